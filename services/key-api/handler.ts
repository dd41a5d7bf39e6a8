import { composeKeyApi } from './compose';
import { loadKeyApiConfig } from './config';

// Cold start: configuration from the function's environment, clients and cache built once per
// container and reused by every warm invocation.
export const { handler } = composeKeyApi(loadKeyApiConfig(process.env));
