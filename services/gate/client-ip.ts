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

/** The client of an ALB event: the right-most `x-forwarded-for` entry, which the ALB added. */
export function albClientIp(event: ALBEvent): string | undefined {
  return rightmostForwardedFor(headerValues(event, 'x-forwarded-for'));
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
  if (context?.elb !== undefined) return rightmostForwardedFor([c.req.header('x-forwarded-for') ?? '']);
  if (context?.identity?.sourceIp) return context.identity.sourceIp;
  if (context?.http?.sourceIp) return context.http.sourceIp;
  if (env?.incoming?.socket) return getConnInfo(c).remote.address;
  return undefined;
}

/**
 * The key a client's budget is kept under: an IPv4 address as it is (an IPv4-mapped IPv6 address as
 * its IPv4 form), an IPv6 address by its /64 — one subscriber's prefix, in which it can pick any of
 * 2^64 addresses, so a per-address budget would be no budget. Not an address at all: none (the
 * request is not throttled per client; behind an ALB or on Node that does not happen).
 */
export function clientKey(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const plain = mapped?.[1] ?? address;
  const family = isIP(plain);
  if (family === 4) return plain;
  if (family !== 6) return undefined;
  return `${expandIpv6(plain).slice(0, 4).join(':')}::/64`;
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
