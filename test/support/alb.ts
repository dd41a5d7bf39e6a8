import type { ALBEvent, ALBResult } from 'aws-lambda';
import { type AlbAdapter, startAlbAdapter } from '../../infra/local/alb-adapter';
import { freePort } from './net';

/** The ALB event the local adapter would build for a simple request. */
export function albEvent(init: {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}): ALBEvent {
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/t/0' } },
    httpMethod: init.method ?? 'POST',
    path: init.path ?? '/',
    queryStringParameters: {},
    headers: { 'x-forwarded-for': '127.0.0.1', ...init.headers },
    body: init.body ?? '',
    isBase64Encoded: init.isBase64Encoded ?? false,
  };
}

/** A local ALB (infra/local/alb-adapter.ts) in front of a handler, on a free port. */
export async function behindAlb(handler: (event: ALBEvent) => Promise<ALBResult>): Promise<AlbAdapter> {
  return startAlbAdapter({
    port: await freePort(),
    handler,
    targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/reliability/0',
  });
}

/** JSON body of an ALB result (the handler's own answer, before any HTTP). */
export function resultJson(
  result: ALBResult,
): { error?: { code?: string; message?: string } } & Record<string, unknown> {
  return JSON.parse(result.body ?? 'null');
}
