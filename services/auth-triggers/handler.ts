import { composeAuthTriggers } from './compose';
import { loadAuthTriggersConfig } from './config';

// Cold start: configuration from the function's environment, the store built once per container.
export const { handler } = composeAuthTriggers(loadAuthTriggersConfig(process.env));
