import { getSecret } from '@aws-lambda-powertools/parameters/secrets';

/**
 * The Stripe secrets billing needs. On AWS they live in Secrets Manager and are read at cold start
 * (the environment holds only their ARNs, so they never appear in the function's configuration or
 * its logs); the local stack hands its stand-in's values in directly.
 */
export interface BillingSecrets {
  /** The Stripe API secret key (`sk_…`). */
  stripeSecretKey(): Promise<string>;
  /** The webhook endpoint's signing secret (`whsec_…`). */
  webhookSecret(): Promise<string>;
}

/** How long a secret read from Secrets Manager is reused before it is read again (a rotation). */
const SECRET_MAX_AGE_SECONDS = 300;

/** Secrets Manager through Powertools Parameters, which caches each value for SECRET_MAX_AGE_SECONDS. */
export function secretsManagerSecrets(arns: {
  stripeSecretKey: string;
  webhookSecret?: string;
}): BillingSecrets {
  const read = async (arn: string | undefined, what: string): Promise<string> => {
    if (!arn) throw new Error(`no Secrets Manager ARN configured for the ${what}`);
    const value = await getSecret(arn, { maxAge: SECRET_MAX_AGE_SECONDS });
    if (typeof value !== 'string' || value === '') throw new Error(`the ${what} secret is empty`);
    return value;
  };
  return {
    stripeSecretKey: () => read(arns.stripeSecretKey, 'Stripe secret key'),
    webhookSecret: () => read(arns.webhookSecret, 'webhook signing secret'),
  };
}

/** Values known in-process (the local stack, tests). */
export function fixedSecrets(values: { stripeSecretKey: string; webhookSecret?: string }): BillingSecrets {
  return {
    stripeSecretKey: async () => values.stripeSecretKey,
    webhookSecret: async () => {
      if (!values.webhookSecret) throw new Error('no webhook signing secret given');
      return values.webhookSecret;
    },
  };
}
