/** Something with Hono's `request` (an app built by createApp): tests call it without a server. */
interface Requestable {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** One request to an app as a signed-in caller (`token`), with a JSON body when one is given. */
export function requestApp(
  app: Requestable,
  path: string,
  init: { token?: string; method?: string; body?: unknown } = {},
): Promise<Response> {
  return Promise.resolve(
    app.request(path, {
      method: init.method ?? 'GET',
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    }),
  );
}
