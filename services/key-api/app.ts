import type { ALBEvent, ALBResult } from 'aws-lambda';
import { ANY_ROUTE } from '../../contracts/usage-event';
import { albJson, albRefusal } from '../gate/alb';
import { albClientIp, clientKey } from '../gate/client-ip';
import { extractKey } from '../gate/extract-key';
import { Gate, type GateDeps } from '../gate/gate';
import type { UsageSnapshots } from './usage-snapshots';

/** key-api also takes the article's body form (extract-key.ts). */
const KEY_PLACES = 'in the x-api-key header, as a Bearer token, or as {"key": ...}';

export type { PublishFailureMode } from '../gate/gate';

export interface KeyApiDeps extends GateDeps {
  usage: UsageSnapshots;
  /** Browser origins allowed to call the key API (the web page's "try your key"). */
  allowedOrigins: readonly string[];
}

export type KeyApiHandler = (event: ALBEvent) => Promise<ALBResult>;

const ALLOWED_HEADERS = 'authorization, content-type, x-api-key';

function corsHeaders(event: ALBEvent, allowedOrigins: readonly string[]): Record<string, string> {
  const origin = event.headers?.origin ?? event.multiValueHeaders?.origin?.[0];
  if (!origin || !allowedOrigins.includes(origin)) return {};
  return { 'access-control-allow-origin': origin, vary: 'origin' };
}

/** key-api bills every accepted check: answering it is the work. */
const billEveryCheck = () => true;

/**
 * The key API as a function of an ALB event: the gate (services/gate) checks the key and publishes
 * one usage event per accepted check (route `*`), and the answer is the key's id and usage today.
 * 401 bodies say which refusal it was; 503 means "try again", never "bad key".
 */
export function createKeyApiHandler(deps: KeyApiDeps): KeyApiHandler {
  const gate = new Gate(deps, { keyPlaces: KEY_PLACES });

  return async (event) => {
    const cors = corsHeaders(event, deps.allowedOrigins);
    if (event.httpMethod === 'OPTIONS') {
      return {
        statusCode: 204,
        statusDescription: '204 No Content',
        isBase64Encoded: false,
        headers: {
          ...cors,
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          'access-control-allow-headers': ALLOWED_HEADERS,
          'access-control-max-age': '600',
        },
        body: '',
      };
    }
    // Behind the ALB: the client is the right-most x-forwarded-for entry, the one the ALB added.
    const admission = await gate.admit(extractKey(event), { client: () => clientKey(albClientIp(event)) });
    if (!admission.admitted) return albRefusal(admission.refusal, cors);
    const { accountId, keyId } = admission.caller;
    const [settled, usage] = await Promise.all([
      gate.settle(admission, { route: ANY_ROUTE, method: event.httpMethod, status: 200 }, billEveryCheck),
      deps.usage.get(accountId, keyId, { cachedOnly: admission.degraded }),
    ]);
    const withheld = Gate.withheld(settled);
    if (withheld) return albRefusal(withheld, cors);
    return albJson(200, { ok: true, keyId, usage }, { ...admission.headers, ...cors });
  };
}
