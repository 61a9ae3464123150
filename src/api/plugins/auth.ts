import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { TokenError, type TokenVerifier } from '../../auth.js';
import { ApiError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller (the token's `sub`); set on every `/api` route. */
    userId: string;
  }
}

export interface BearerAuthOptions {
  verifyToken: TokenVerifier;
}

/** Requires `Authorization: Bearer <JWT>` on every route of the scope it is registered in. */
export const bearerAuth = fp(
  async (scope: FastifyInstance, { verifyToken }: BearerAuthOptions) => {
    scope.decorateRequest('userId', '');
    scope.addHook('onRequest', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      if (!header) {
        throw new ApiError(
          'TOKEN_MISSING',
          'The Authorization header with a Bearer token is required',
        );
      }
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match?.[1]) {
        throw new ApiError('TOKEN_INVALID', 'The Authorization header must be "Bearer <token>"');
      }
      try {
        request.userId = await verifyToken(match[1]);
      } catch (error) {
        if (error instanceof TokenError) throw new ApiError(error.problem, error.message);
        throw error;
      }
      request.log = request.log.child({ userId: request.userId });
    });
  },
  { name: 'bearer-auth' },
);
