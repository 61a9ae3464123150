import type { FastifyRequest } from 'fastify';

/**
 * Query parameters whose value is a credential: a stream link's `access`, a media link's
 * `signature`, a token a client put in the query by mistake. Logs are read by more people
 * (and systems) than may replay what they hold.
 */
const credentialParameter =
  /^(access|signature|token|access_token|jwt|api_?key|key|secret|password)$/i;

function parameterName(pair: string): string {
  const name = pair.split('=', 1)[0]!.replaceAll('+', ' ');
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** `url` with the value of each credential in its query replaced by `***`. */
export function redactedUrl(url: string): string {
  const start = url.indexOf('?');
  if (start === -1) return url;
  const pairs = url
    .slice(start + 1)
    .split('&')
    .map((pair) =>
      credentialParameter.test(parameterName(pair)) ? `${pair.split('=', 1)[0]}=***` : pair,
    );
  return `${url.slice(0, start + 1)}${pairs.join('&')}`;
}

/** The job a request is about: the `:id` of the job routes, the only routes that have one. */
export function jobIdOf(request: FastifyRequest): string | undefined {
  const { id } = (request.params ?? {}) as { id?: unknown };
  return typeof id === 'string' ? id : undefined;
}

/** What each request's log lines say of it (Fastify's own fields), its URL's credentials hidden. */
export function requestLogFields(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactedUrl(request.url),
    jobId: jobIdOf(request),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}
