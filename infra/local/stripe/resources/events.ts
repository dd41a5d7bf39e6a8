import { noSuch } from '../errors';
import type { Routes } from '../router';

export const eventRoutes: Routes = {
  'GET /v1/events/{id}': ({ path, state }) => {
    const event = state.events.get(path.id ?? '');
    if (event === undefined) throw noSuch('event', path.id ?? '', 'id');
    return event;
  },
  'GET /v2/core/events/{id}': ({ path, state }) => {
    const event = state.v2Events.get(path.id ?? '');
    if (event === undefined) throw noSuch('event', path.id ?? '', 'id');
    return event;
  },
};
