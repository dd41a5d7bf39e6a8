/** The error types of Stripe's v1 error envelope (components.schemas.api_errors.type). */
export type StripeErrorType = 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';

interface StripeErrorFields {
  readonly type: StripeErrorType;
  readonly message: string;
  readonly code?: string;
  readonly param?: string;
}

/**
 * An answer in Stripe's error envelope, `{ error: { type, code, message, param } }`, with its HTTP
 * status. Thrown by handlers; the server turns it into the answer. `headers` carries e.g.
 * `Stripe-Should-Retry: false`, which Stripe sends where a retry cannot succeed.
 */
export class StripeApiError extends Error {
  override readonly name = 'StripeApiError';

  constructor(
    readonly status: number,
    readonly fields: StripeErrorFields,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(fields.message);
  }

  body(): { error: StripeErrorFields } {
    return { error: { ...this.fields } };
  }
}

/** 400 `invalid_request_error`: a parameter is missing or wrong. */
export function invalidRequest(message: string, param?: string, code?: string): StripeApiError {
  return new StripeApiError(400, {
    type: 'invalid_request_error',
    message,
    ...(param === undefined ? {} : { param }),
    ...(code === undefined ? {} : { code }),
  });
}

/** A required parameter is absent (Stripe's `parameter_missing`). */
export function missingParam(param: string): StripeApiError {
  return invalidRequest(`Missing required param: ${param}.`, param, 'parameter_missing');
}

/** 404 `resource_missing`, worded as Stripe words it: "No such customer: 'cus_…'". */
export function noSuch(kind: string, id: string, param = 'id'): StripeApiError {
  return new StripeApiError(404, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such ${kind}: '${id}'`,
    param,
  });
}
