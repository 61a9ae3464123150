import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { TokenError, type TokenVerifier } from '../../auth.js';
import { ApiError, errorStatuses, type ErrorCode } from '../errors.js';
import type { StreamLinks } from '../services/stream-links.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller (the token's `sub`); set on every `/api` route. */
    userId: string;
    /** Whether the caller's token carries the admin claim (AUTH_ADMIN_CLAIM). */
    isAdmin: boolean;
  }
  interface FastifyInstance {
    /** Signs the links that open a progress stream without a token (see StreamLinks). */
    streamLinks: StreamLinks;
  }
  interface FastifyContextConfig {
    /**
     * A job's progress stream, of the jobs of this kind: opened by a signed stream link
     * (`?access=`) made for it as well as by a token.
     */
    streamLink?: { kind: string };
  }
}

/**
 * The challenge every 401 carries (RFC 9110, 11.6.1): the Bearer scheme (RFC 6750, 3), with
 * `invalid_token` when a bearer token was sent and refused. A request without one, or with
 * another scheme, learns only the scheme to use.
 */
const challenges = { noToken: 'Bearer', invalidToken: 'Bearer error="invalid_token"' };

/** A refusal of the caller's credentials: a 401 with its challenge, or AUTH_UNAVAILABLE (503). */
function refusal(
  code: Exclude<ErrorCode, 'VALIDATION_FAILED'>,
  message: string,
  challenge: string,
): ApiError {
  const headers: Record<string, string> =
    errorStatuses[code] === 401 ? { 'www-authenticate': challenge } : {};
  return new ApiError(code, message, undefined, headers);
}

export interface BearerAuthOptions {
  verifyToken: TokenVerifier;
  streamLinks: StreamLinks;
}

/**
 * Requires `Authorization: Bearer <JWT>` on every route of the scope it is registered in; a
 * progress stream also opens with the signed link made for it.
 */
export const bearerAuth = fp(
  async (scope: FastifyInstance, { verifyToken, streamLinks }: BearerAuthOptions) => {
    scope.decorateRequest('userId', '');
    scope.decorate('streamLinks', streamLinks);
    scope.decorateRequest('isAdmin', false);
    /** The caller: by the signed link of a stream that accepts one, else by the bearer token. */
    async function authenticate(
      request: FastifyRequest,
    ): Promise<{ userId: string; admin: boolean }> {
      const header = request.headers.authorization;
      const { access } = request.query as { access?: unknown };
      if (!header && typeof access === 'string') {
        const stream = request.routeOptions.config.streamLink;
        if (!stream) {
          throw new ApiError(
            'STREAM_LINK_INVALID',
            'A stream link opens only the progress stream it was made for; this route needs the Authorization header',
          );
        }
        const { id: jobId } = request.params as { id: string };
        const userId = streamLinks.verify(access, { kind: stream.kind, jobId });
        if (!userId) {
          throw new ApiError(
            'STREAM_LINK_INVALID',
            'The stream link is invalid, expired or for another stream; ask for a new one',
          );
        }
        return { userId, admin: false };
      }
      if (!header) {
        throw refusal(
          'TOKEN_MISSING',
          'The Authorization header with a Bearer token is required',
          challenges.noToken,
        );
      }
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match?.[1]) {
        throw refusal(
          'TOKEN_INVALID',
          'The Authorization header must be "Bearer <token>"',
          challenges.noToken,
        );
      }
      try {
        return await verifyToken(match[1]);
      } catch (error) {
        if (error instanceof TokenError) {
          throw refusal(error.problem, error.message, challenges.invalidToken);
        }
        throw error;
      }
    }
    scope.addHook('onRequest', async (request: FastifyRequest) => {
      ({ userId: request.userId, admin: request.isAdmin } = await authenticate(request));
      request.log = request.log.child({ userId: request.userId });
    });
  },
  { name: 'bearer-auth' },
);
