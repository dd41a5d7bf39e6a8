import { handle } from 'hono/aws-lambda';
import { composeUserApi } from './compose';
import { loadUserApiConfig } from './config';

// Cold start: configuration from the function's environment, the app built once per container.
export const handler = handle(composeUserApi(loadUserApiConfig(process.env)));
