import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { KindRegistration, KindRouteDependencies } from '../registration.js';
import { createVlogActivities } from './activities/index.js';
import {
  chargeGenerationsLeftRunning,
  freeLeasesOfGenerationsLeftRunning,
} from './activities/generate.js';
import { vlogRoutes } from './api/routes.js';
import { createVlogService } from './api/service.js';
import { vlogKind } from './declaration.js';

function routes({ actions, ...deps }: KindRouteDependencies): FastifyPluginAsyncZod {
  return vlogRoutes(createVlogService(deps), actions);
}

export const vlogRegistration: KindRegistration<typeof vlogKind> = {
  declaration: vlogKind,
  routes,
  activities: createVlogActivities,
  chargeOnEnd: chargeGenerationsLeftRunning,
  freeLeasesLeftRunning: freeLeasesOfGenerationsLeftRunning,
};
