import { isIP } from 'node:net';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { ALBEvent } from 'aws-lambda';
import type { Context } from 'hono';
import { headerValues } from './extract-key';

/**
 * The client's address as the nearest proxy saw it: the right-most entry of `x-forwarded-for`.
 * An ALB (in its default `append` mode) appends the address of whoever connected to it; every entry
 * to the left of that came with the request, so the client wrote it and may rotate it at will — a
 * guesser sending a new left-most address per request would get a fresh budget each time. Behind
 * more proxies than one (CloudFront before the ALB), the right-most is the nearest proxy's address:
 * pass a `clientIp` of your own that skips the hops you run.
 */
export function rightmostForwardedFor(values: readonly string[]): string | undefined {
  const last = values.at(-1)?.split(',').at(-1)?.trim();
  return last ? last : undefined;
}

/**
 * What albClientIp answers for an event with more than one `x-forwarded-for` header. Not an address,
 * so clientKey files every such request under one shared budget (UNATTRIBUTED_CLIENT).
 */
export const AMBIGUOUS_FORWARDED_FOR = 'ambiguous-x-forwarded-for';

/**
 * The client of an ALB event: the right-most `x-forwarded-for` entry, which the ALB added (as
 * `ip` or, with the target group's client port kept, `ip:port` / `[ipv6]:port`: clientKey takes the
 * port off). A request that came with the header twice (an ALB with multi-value headers passes both
 * in `multiValueHeaders`) leaves no way to tell which one the ALB appended to: the last one may be
 * the client's own, written whole. Such an event answers AMBIGUOUS_FORWARDED_FOR rather than trust
 * either, so all of them share one budget: a guesser gains nothing by sending the header twice, and
 * real clients do not (proxies combine the header into one). Without multi-value headers the ALB
 * hands over one value per header name, as the local ALB does (infra/local/alb-adapter.ts): the
 * last one sent, with the client's address appended to it.
 */
export function albClientIp(event: ALBEvent): string | undefined {
  const values = headerValues(event, 'x-forwarded-for');
  if (values.length > 1) return AMBIGUOUS_FORWARDED_FOR;
  return rightmostForwardedFor(values);
}

interface LambdaBindings {
  event?: ALBEvent;
  requestContext?: {
    elb?: unknown;
    identity?: { sourceIp?: string };
    http?: { sourceIp?: string };
  };
  incoming?: { socket?: unknown };
}

/**
 * The client of a Hono request, by where the app runs:
 *  - Hono on Lambda behind an ALB (`hono/aws-lambda`): the right-most `x-forwarded-for` entry;
 *    behind API Gateway, the source address it reports (what hono/aws-lambda's `getConnInfo` reads;
 *    that helper is deprecated in Hono 4 for a package we do not install, so its three lines are here);
 *  - on Node (`@hono/node-server`): the connection's address (its `getConnInfo`). A Node server
 *    behind a proxy or an ALB sees the proxy's address there: give the middleware
 *    `clientIp: (c) => rightmostForwardedFor([c.req.header('x-forwarded-for') ?? ''])`;
 *  - anywhere else (`app.request()` in tests): unknown, so not throttled per client.
 */
export function honoClientIp(c: Context): string | undefined {
  const env = c.env as LambdaBindings | undefined;
  const context = env?.requestContext;
  if (context?.elb !== undefined) {
    // The event itself where hono/aws-lambda passes it: a request's headers join repeated
    // `x-forwarded-for` headers into one, which would hide that there were two.
    if (env?.event) return albClientIp(env.event);
    return rightmostForwardedFor([c.req.header('x-forwarded-for') ?? '']);
  }
  if (context?.identity?.sourceIp) return context.identity.sourceIp;
  if (context?.http?.sourceIp) return context.http.sourceIp;
  if (env?.incoming?.socket) return getConnInfo(c).remote.address;
  return undefined;
}

/**
 * The one budget of every client whose address cannot be read (AMBIGUOUS_FORWARDED_FOR, or an entry
 * that is no address): shared, so that writing something unreadable buys no budget of one's own.
 */
export const UNATTRIBUTED_CLIENT = 'unattributed';

/**
 * The key a client's budget is kept under: an IPv4 address as it is (an IPv4-mapped IPv6 address as
 * its IPv4 form), an IPv6 address by its /64 — one subscriber's prefix, in which it can pick any of
 * 2^64 addresses, so a per-address budget would be no budget. A port is taken off (`ip:port`,
 * `[ipv6]:port`: what an ALB that keeps the client port appends, a new one per connection).
 * Anything else that is not an address: UNATTRIBUTED_CLIENT, one budget for all of them. No
 * address at all (undefined: where the app runs tells none, `app.request()` in tests): none, the
 * request is not throttled per client.
 */
export function clientKey(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const bare = withoutPort(address.trim());
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  const plain = mapped?.[1] ?? bare;
  const family = isIP(plain);
  if (family === 4) return plain;
  if (family !== 6) return UNATTRIBUTED_CLIENT;
  return `${expandIpv6(plain).slice(0, 4).join(':')}::/64`;
}

/** `198.51.100.7:443` → `198.51.100.7`, `[2001:db8::1]:443` and `[2001:db8::1]` → `2001:db8::1`. */
function withoutPort(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(address);
  if (bracketed?.[1]) return bracketed[1];
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(address);
  return v4?.[1] ?? address;
}

/** The eight hextets of an IPv6 address (zone and embedded IPv4 tail included), without leading zeros. */
function expandIpv6(address: string): string[] {
  let text = address.split('%')[0] ?? address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((h) => Number.parseInt(h, 16).toString(16));
}
