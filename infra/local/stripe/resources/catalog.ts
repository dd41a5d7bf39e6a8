import { invalidRequest, noSuch } from '../errors';
import { newId } from '../ids';
import type { ParamReader } from '../params';
import type { RequestContext, Routes } from '../router';
import type { StandInState, StripeObject } from '../state';

function newProduct(params: ParamReader, nowSeconds: number): StripeObject {
  return {
    id: newId('prod'),
    object: 'product',
    active: params.optionalBoolean('active') ?? true,
    created: nowSeconds,
    default_price: null,
    description: params.optionalString('description') ?? null,
    images: [],
    livemode: false,
    marketing_features: [],
    metadata: params.metadata() ?? {},
    name: params.string('name'),
    package_dimensions: null,
    shippable: null,
    statement_descriptor: null,
    tax_code: null,
    type: 'service',
    unit_label: null,
    updated: nowSeconds,
    url: null,
  };
}

function recurring(params: ParamReader, state: StandInState): Record<string, unknown> | null {
  const given = params.optionalObject('recurring');
  if (given === undefined) return null;
  const meter = given.optionalString('meter') ?? null;
  if (meter !== null && !state.meters.has(meter)) throw noSuch('billing meter', meter, 'recurring[meter]');
  const usageType = given.oneOf('usage_type', ['licensed', 'metered'] as const) ?? 'licensed';
  if (meter !== null && usageType !== 'metered') {
    throw invalidRequest(
      'A price with a meter must have recurring[usage_type]=metered.',
      'recurring[usage_type]',
    );
  }
  return {
    aggregate_usage: null,
    interval: given.oneOf('interval', ['day', 'week', 'month', 'year'] as const) ?? given.string('interval'),
    interval_count: given.optionalInteger('interval_count') ?? 1,
    meter,
    trial_period_days: null,
    usage_type: usageType,
  };
}

function productFor(params: ParamReader, context: RequestContext): string {
  const id = params.optionalString('product');
  if (id !== undefined) {
    if (!context.state.products.has(id)) throw noSuch('product', id, 'product');
    return id;
  }
  const data = params.optionalObject('product_data');
  if (data === undefined) throw invalidRequest('You must specify either product or product_data.', 'product');
  const product = newProduct(data, context.time.nowSeconds());
  context.state.products.set(product.id, product);
  return product.id;
}

function newPrice(context: RequestContext): StripeObject {
  const { params, state, time } = context;
  const unitAmount = params.optionalInteger('unit_amount');
  const schedule = recurring(params, state);
  return {
    id: newId('price'),
    object: 'price',
    active: params.optionalBoolean('active') ?? true,
    billing_scheme: 'per_unit',
    created: time.nowSeconds(),
    currency: params.string('currency').toLowerCase(),
    custom_unit_amount: null,
    livemode: false,
    lookup_key: params.optionalString('lookup_key') ?? null,
    metadata: params.metadata() ?? {},
    nickname: params.optionalString('nickname') ?? null,
    product: productFor(params, context),
    recurring: schedule,
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: schedule === null ? 'one_time' : 'recurring',
    unit_amount: unitAmount ?? null,
    unit_amount_decimal: unitAmount === undefined ? null : String(unitAmount),
  };
}

export function priceById(state: StandInState, id: string, param = 'price'): StripeObject {
  const price = state.prices.get(id);
  if (price === undefined) throw noSuch('price', id, param);
  return price;
}

export const catalogRoutes: Routes = {
  'POST /v1/products': ({ params, state, time }) => {
    const product = newProduct(params, time.nowSeconds());
    state.products.set(product.id, product);
    return product;
  },
  'POST /v1/prices': (context) => {
    const price = newPrice(context);
    context.state.prices.set(price.id, price);
    return price;
  },
  'GET /v1/prices/{price}': ({ path, state }) => priceById(state, path.price ?? '', 'price'),
};
