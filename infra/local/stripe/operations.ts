/**
 * The Stripe API operations the stand-in serves, named as Stripe's OpenAPI document names them
 * (method and path template): the router dispatches on these, and the fixture extraction
 * (extract-openapi.ts) pulls exactly their response schemas, so an answer is always checked against
 * the schema of the operation that produced it.
 */
export const SERVED_OPERATIONS = [
  { method: 'post', path: '/v1/customers' },
  { method: 'get', path: '/v1/customers/{customer}' },
  { method: 'post', path: '/v1/products' },
  { method: 'post', path: '/v1/prices' },
  { method: 'get', path: '/v1/prices/{price}' },
  { method: 'post', path: '/v1/checkout/sessions' },
  { method: 'get', path: '/v1/checkout/sessions/{session}' },
  { method: 'get', path: '/v1/subscriptions' },
  { method: 'get', path: '/v1/subscriptions/{subscription_exposed_id}' },
  { method: 'post', path: '/v1/subscriptions/{subscription_exposed_id}' },
  { method: 'delete', path: '/v1/subscriptions/{subscription_exposed_id}' },
  { method: 'post', path: '/v1/billing_portal/sessions' },
  { method: 'get', path: '/v1/invoices/{invoice}' },
  { method: 'post', path: '/v1/billing/meters' },
  { method: 'get', path: '/v1/billing/meters/{id}' },
  { method: 'post', path: '/v1/billing/meter_events' },
  { method: 'get', path: '/v1/billing/meters/{id}/event_summaries' },
  { method: 'get', path: '/v1/events/{id}' },
] as const;

export type ServedOperation = (typeof SERVED_OPERATIONS)[number];
/** e.g. `POST /v1/customers`: the key of an operation in the fixture. */
export type OperationKey = `${Uppercase<ServedOperation['method']>} ${ServedOperation['path']}`;

/**
 * The objects webhook events carry in `data.object`: the event schema types it as any object, so
 * the fidelity test checks it against the object's own schema.
 */
export const WEBHOOK_OBJECT_SCHEMAS = ['checkout.session', 'subscription', 'customer', 'invoice'] as const;
