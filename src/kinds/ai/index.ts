import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { KindRegistration, KindRouteDependencies } from '../registration.js';
import { createAiGenerationActivities } from './activities.js';
import { aiJobRoutes } from './api/routes.js';
import { createAiJobService } from './api/service.js';
import { aiKind } from './declaration.js';

function routes({ actions, ...deps }: KindRouteDependencies): FastifyPluginAsyncZod {
  return aiJobRoutes(createAiJobService(deps), actions);
}

export const aiRegistration: KindRegistration<typeof aiKind> = {
  declaration: aiKind,
  routes,
  activities: createAiGenerationActivities,
};
