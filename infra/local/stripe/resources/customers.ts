import { noSuch } from '../errors';
import { newId } from '../ids';
import type { ParamReader } from '../params';
import type { RequestContext, Routes } from '../router';
import type { StandInState, StripeObject } from '../state';

/** A customer as `POST /v1/customers` answers it. */
export function newCustomer(params: ParamReader, createdSeconds: number): StripeObject {
  return {
    id: newId('cus'),
    object: 'customer',
    address: null,
    balance: 0,
    created: createdSeconds,
    currency: null,
    default_source: null,
    delinquent: false,
    description: params.optionalString('description') ?? null,
    discount: null,
    email: params.optionalString('email') ?? null,
    invoice_prefix: newId('inv').slice(4, 12).toUpperCase(),
    invoice_settings: {
      custom_fields: null,
      default_payment_method: null,
      footer: null,
      rendering_options: null,
    },
    livemode: false,
    metadata: params.metadata() ?? {},
    name: params.optionalString('name') ?? null,
    phone: null,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
  };
}

export function customerById(state: StandInState, id: string, param = 'customer'): StripeObject {
  const customer = state.customers.get(id);
  if (customer === undefined) throw noSuch('customer', id, param);
  return customer;
}

export const customerRoutes: Routes = {
  'POST /v1/customers': ({ params, state, time }: RequestContext) => {
    const customer = newCustomer(params, time.nowSeconds());
    state.customers.set(customer.id, customer);
    return customer;
  },
  'GET /v1/customers/{customer}': ({ path, state }) => customerById(state, path.customer ?? '', 'id'),
};
