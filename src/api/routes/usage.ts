import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { getUsageSchema } from '../schemas/usage.js';
import { refuseOthersUsage, type UsageService } from '../services/usage.js';

/** `GET /api/usage`: what the caller spent and holds (an admin: any user's, or everyone's). */
export function usageRoutes(usage: UsageService): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/usage',
      {
        schema: getUsageSchema,
        // Authorisation before validation: another user's usage is refused whatever the query.
        onRequest: async (request) => {
          refuseOthersUsage(request, (request.query as { userId?: unknown }).userId);
        },
      },
      async (request) =>
        usage.usage({ userId: request.userId, isAdmin: request.isAdmin }, request.query),
    );
  };
}
