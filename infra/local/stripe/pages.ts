import type { StandInTime } from './clock';
import type { EventPublisher } from './events';
import { parseStripeParams } from './form';
import { completeSession, SUCCEEDING_TEST_CARD } from './resources/checkout';
import { changeSubscription, type Subscription } from './resources/subscriptions';
import type { StandInState } from './state';

export interface PageAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

interface PageDeps {
  readonly state: StandInState;
  readonly time: StandInTime;
  readonly events: EventPublisher;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

function html(status: number, title: string, content: string): PageAnswer {
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${content}</body></html>`;
  return { status, headers: { 'content-type': 'text/html; charset=utf-8' }, body };
}

/** The hosted Checkout page: a card form; submitting Stripe's succeeding test card completes it. */
function checkoutPage(id: string, method: string, form: string, deps: PageDeps): PageAnswer {
  const session = deps.state.checkoutSessions.get(id);
  if (session === undefined) return html(404, 'No such Checkout Session', '');
  if (session.status !== 'open') return html(410, 'This Checkout Session is no longer open', '');
  const page = `<p>Stand-in checkout for ${escapeHtml(String(session.amount_total))} ${escapeHtml(String(session.currency))}</p>
<form method="post"><label>Card number <input name="card" value="${SUCCEEDING_TEST_CARD}"></label><button type="submit">Subscribe</button></form>`;
  if (method === 'GET') return html(200, 'Checkout', page);
  const card = (parseStripeParams(form).card ?? '').toString().replace(/\s+/g, '');
  if (card !== SUCCEEDING_TEST_CARD) return html(402, 'Your card was declined.', page);
  completeSession(session, deps.state, deps.events, deps.time.nowSeconds());
  const success = session.success_url as string | null;
  if (success === null) return html(200, 'Payment complete', '');
  return { status: 303, headers: { location: success.replace('{CHECKOUT_SESSION_ID}', id) }, body: '' };
}

/** The customer portal: lists the customer's subscriptions; "cancel" cancels one at period end. */
function portalPage(id: string, method: string, form: string, deps: PageDeps): PageAnswer {
  const session = deps.state.portalSessions.get(id);
  if (session === undefined) return html(404, 'No such portal session', '');
  const mine = [...deps.state.subscriptions.values()].filter(
    (sub) => sub.customer === session.customer,
  ) as Subscription[];
  if (method === 'POST') {
    const target = mine.find((sub) => sub.id === parseStripeParams(form).cancel);
    if (target !== undefined)
      changeSubscription(
        target,
        { cancel_at_period_end: true, cancel_at: target.current_period_end },
        deps.events,
      );
  }
  const rows = mine
    .map(
      (sub) =>
        `<li>${escapeHtml(sub.id)}: ${escapeHtml(sub.status)}${sub.cancel_at_period_end ? ' (cancels at period end)' : ''} <button name="cancel" value="${escapeHtml(sub.id)}">Cancel</button></li>`,
    )
    .join('');
  const back =
    session.return_url === null ? '' : `<a href="${escapeHtml(String(session.return_url))}">Return</a>`;
  return html(200, 'Billing portal', `<form method="post"><ul>${rows}</ul></form>${back}`);
}

/** Pages a browser opens (no API key): `/checkout/pay/{id}` and `/billing_portal/session/{id}`. */
export function answerPage(
  pathname: string,
  method: string,
  form: string,
  deps: PageDeps,
): PageAnswer | undefined {
  const checkout = /^\/checkout\/pay\/([^/]+)$/.exec(pathname);
  if (checkout?.[1] !== undefined) return checkoutPage(checkout[1], method, form, deps);
  const portal = /^\/billing_portal\/session\/([^/]+)$/.exec(pathname);
  if (portal?.[1] !== undefined) return portalPage(portal[1], method, form, deps);
  return undefined;
}
