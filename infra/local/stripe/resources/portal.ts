import { newId } from '../ids';
import type { Routes } from '../router';
import { customerById } from './customers';

/** The one portal configuration the stand-in has: Stripe creates a default one per account. */
export const PORTAL_CONFIGURATION = 'bpc_standin_default';

export const portalRoutes: Routes = {
  'POST /v1/billing_portal/sessions': ({ params, state, time, baseUrl }) => {
    const customer = customerById(state, params.string('customer'));
    const id = newId('bps');
    const session = {
      id,
      object: 'billing_portal.session',
      configuration: PORTAL_CONFIGURATION,
      created: time.nowSeconds(),
      customer: customer.id,
      flow: null,
      livemode: false,
      locale: null,
      on_behalf_of: null,
      return_url: params.optionalString('return_url') ?? null,
      url: `${baseUrl}/billing_portal/session/${id}`,
    };
    state.portalSessions.set(id, session);
    return session;
  },
};
