import { composeMetering } from './compose';
import { loadMeteringConfig } from './config';

// Cold start: configuration from the function's environment, clients built once per container.
export const { handler } = composeMetering(loadMeteringConfig(process.env));
