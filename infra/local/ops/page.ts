/**
 * The ops page: a sign-in form (the admin's email and password, straight to the user pool, as the
 * web page signs in) and, once signed in, every widget of the dashboard's definition with its
 * figures, polled from the snapshot endpoint every two seconds. No build step and no dependency:
 * one HTML document with a small script; everything it shows comes from the snapshot.
 */

export interface OpsPageConfig {
  readonly cognito: { readonly endpoint: string; readonly clientId: string };
  readonly snapshotPath: string;
  readonly dashboard: string;
}

/** How often the page reads the figures again. */
export const POLL_MS = 2_000;

// A string in a <script> block: JSON, with `<` escaped so no `</script>` can end it early.
const inlineJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

const STYLE = `
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 12px 20px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header .as-of { opacity: .7; font-size: 12px; }
  main { padding: 16px 20px; }
  form { background: #fff; padding: 16px; max-width: 320px; display: grid; gap: 8px; border-radius: 6px; }
  .notice { color: #a4262c; }
  .grid { display: grid; grid-template-columns: repeat(24, 1fr); gap: 10px; }
  .widget { background: #fff; border-radius: 6px; padding: 10px 12px; min-width: 0; }
  .widget h2 { font-size: 14px; margin: 0 0 6px; }
  .widget table { width: 100%; border-collapse: collapse; font-size: 12px; }
  .widget td { padding: 1px 4px; border-top: 1px solid #eceef1; }
  .widget td.value { text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; }
  .widget td.stat { color: #667; }
  .widget tr[data-axis="right"] td.label::after { content: " (right)"; color: #99a; }
  .alarms { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px; }
  .alarms li { background: #fff; border-left: 6px solid #2e7d32; padding: 4px 8px; border-radius: 4px; }
  .alarms li[data-state="ALARM"] { border-color: #c62828; background: #fdecea; }
  @media (max-width: 800px) { .widget { grid-column: span 24 !important; } }
`;

/** The page's script, as source: it runs in the browser, not here. */
const SCRIPT = `
const TOKEN_KEY = 'tollgate-ops-id-token';
const main = document.querySelector('main');
const asOf = document.querySelector('.as-of');
let timer;

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
};

const format = (value) =>
  value === null ? '–' : Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) < 10 ? 2 : 1);

function showSignIn(message) {
  clearInterval(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  const form = el('form', { 'aria-label': 'Sign in' },
    el('h2', {}, 'Sign in as an admin'),
    el('label', { for: 'email' }, 'Email'), el('input', { id: 'email', type: 'email', autocomplete: 'username', required: '' }),
    el('label', { for: 'password' }, 'Password'), el('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: '' }),
    el('button', { type: 'submit' }, 'Sign in'));
  if (message) form.append(el('p', { class: 'notice', role: 'alert' }, message));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const token = await signIn(form.querySelector('#email').value, form.querySelector('#password').value);
      sessionStorage.setItem(TOKEN_KEY, token);
      start();
    } catch (error) {
      showSignIn(error.message);
    }
  });
  main.replaceChildren(form);
}

async function signIn(email, password) {
  const response = await fetch(CONFIG.cognito.endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'AWSCognitoIdentityProviderService.InitiateAuth',
    },
    body: JSON.stringify({
      AuthFlow: 'USER_PASSWORD_AUTH',
      ClientId: CONFIG.cognito.clientId,
      AuthParameters: { USERNAME: email, PASSWORD: password },
    }),
  });
  const body = await response.json().catch(() => ({}));
  const token = body.AuthenticationResult && body.AuthenticationResult.IdToken;
  if (!response.ok || !token) throw new Error(body.message || 'Sign-in failed');
  return token;
}

function render(snapshot) {
  asOf.textContent = 'figures over the last ' + snapshot.periodSeconds / 60 + ' minutes, as of ' + snapshot.asOf;
  const alarms = el('ul', { class: 'alarms', 'aria-label': 'Alarms' },
    ...snapshot.alarms.map((alarm) =>
      el('li', { 'data-alarm': alarm.name, 'data-state': alarm.state, title: alarm.description },
        el('strong', { class: 'state' }, alarm.state), ' ' + alarm.name + ' (' + format(alarm.value) + ' vs ' + alarm.threshold + ')')));
  const grid = el('div', { class: 'grid' },
    ...snapshot.widgets.map((widget) => {
      const section = el('section', { class: 'widget', 'data-widget': widget.id, style: 'grid-column: span ' + widget.width },
        el(widget.type === 'text' ? 'h1' : 'h2', {}, widget.title));
      if (widget.series.length > 0) {
        section.append(el('table', {}, ...widget.series.map((series) =>
          el('tr', { 'data-axis': series.axis, 'data-points': series.points },
            el('td', { class: 'label' }, series.label), el('td', { class: 'stat' }, series.statistic),
            el('td', { class: 'value' }, format(series.value))))));
      }
      return section;
    }));
  main.replaceChildren(el('h2', {}, 'Alarms'), alarms, grid);
}

async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showSignIn();
  const response = await fetch(CONFIG.snapshotPath, { headers: { authorization: 'Bearer ' + token } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 || response.status === 403) return showSignIn(body.error ? body.error.message : 'Sign in again');
  if (!response.ok) throw new Error(body.error ? body.error.message : 'The ops view answered ' + response.status);
  render(body);
}

function start() {
  clearInterval(timer);
  refresh().catch((error) => { asOf.textContent = error.message; });
  timer = setInterval(() => refresh().catch((error) => { asOf.textContent = error.message; }), CONFIG.pollMs);
}

start();
`;

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function opsPageHtml(config: OpsPageConfig): string {
  const dashboard = escapeHtml(config.dashboard);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tollgate ops (${dashboard})</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>Tollgate ops: ${dashboard}</h1><span class="as-of"></span></header>
<main></main>
<script>
const CONFIG = ${inlineJson({ ...config, pollMs: POLL_MS })};
${SCRIPT}
</script>
</body>
</html>
`;
}
