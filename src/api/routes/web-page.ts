import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebAssets } from '../../web/build.js';
import { answerRouteNotFound } from '../plugins/error-handler.js';

export interface WebPageOptions {
  /** The built page, on each request for it (loadWebPage loads it once). */
  load: () => Promise<WebAssets>;
  /**
   * Origins besides the page's own that media links point at (the API's public URL for local
   * storage): the page's videos and thumbnails play from them.
   */
  mediaOrigins: string[];
}

/**
 * The page's Content-Security-Policy: its script and styles from its own origin only, no inline
 * script or handler, no eval, no string-to-DOM sinks (Trusted Types); it talks to this API
 * only; videos and images may also come from the media origins and from HTTPS (signed links of
 * S3-compatible storage and Cloud Storage) and, for previews of files being picked, `blob:`.
 */
export function webPageCsp(mediaOrigins: string[]): string {
  const media = ["'self'", 'blob:', ...mediaOrigins, 'https:'].join(' ');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src ${media} data:`,
    `media-src ${media}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ');
}

/**
 * The web page at `/` and its assets at `/assets/*`: not part of the API document. The page
 * signs in with a token the browser keeps (never a cookie), so these routes need none.
 */
export function webPageRoutes(options: WebPageOptions) {
  const csp = webPageCsp(options.mediaOrigins);

  async function send(request: FastifyRequest, reply: FastifyReply, name: string) {
    const asset = (await options.load()).get(name);
    if (!asset) return answerRouteNotFound(request, reply);
    return reply
      .header('content-security-policy', csp)
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cross-origin-resource-policy', 'same-origin')
      .header('permissions-policy', 'camera=(), microphone=(), geolocation=()')
      .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .type(asset.contentType)
      .send(asset.body);
  }

  return async (app: FastifyInstance) => {
    app.get('/', { schema: { hide: true } }, (request, reply) =>
      send(request, reply, 'index.html'),
    );
    app.get<{ Params: { '*': string } }>(
      '/assets/*',
      { schema: { hide: true } },
      (request, reply) => send(request, reply, `assets/${request.params['*']}`),
    );
  };
}
