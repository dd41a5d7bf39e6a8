import { SERVICE_NAMES } from '../../contracts/metric-names';
import { loadGateConfig } from '../../services/gate/index';
import { composeRatesApi } from './compose';

// Cold start: the gate's configuration from the function's environment (the same variables as
// key-api's, contracts/config.ts gateConfigSchema), composed once per container.
export const { handler } = composeRatesApi(loadGateConfig(process.env, SERVICE_NAMES.exampleApi));
