// Every query parameter of the API takes one value. Fastify reads `?limit=1&limit=2` as an
// array, which each schema then refused in its own words ("expected number, received NaN",
// "expected string, received array"); this refuses it first, as a form field given twice is.
// So are the headers that take one value: Node keeps the first of two Authorization headers
// (a proxy in front may keep the last, and the two would disagree on who is calling) and
// joins two Idempotency-Keys into one.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { validationFailed } from '../errors.js';

const repeatedMessage = 'given more than once';

/** Headers the API reads one value of. */
const singleValueHeaders = new Set([
  'authorization',
  'content-type',
  'idempotency-key',
  'last-event-id',
  'range',
  'if-range',
]);

/**
 * Refuses, on every route of the scope, a query parameter or a single-value header given more
 * than once, naming it.
 */
export const refuseRepeatedParameters = fp(
  async (scope: FastifyInstance) => {
    scope.addHook('onRequest', async (request) => {
      const seen = new Set<string>();
      const repeated = new Set<string>();
      const { rawHeaders } = request.raw;
      for (let index = 0; index < rawHeaders.length; index += 2) {
        const name = rawHeaders[index]!.toLowerCase();
        if (!singleValueHeaders.has(name)) continue;
        if (seen.has(name)) repeated.add(name);
        seen.add(name);
      }
      // The query too, before any other hook reads a parameter (a stream link's `access`, the
      // `userId` whose owner the usage route checks first) and judges on one of its values.
      const query = (request.query ?? {}) as Record<string, unknown>;
      const [first, ...rest] = [
        ...[...repeated].map((name) => ({ field: `headers.${name}`, message: repeatedMessage })),
        ...Object.entries(query)
          .filter(([, value]) => Array.isArray(value))
          .map(([name]) => ({ field: `querystring.${name}`, message: repeatedMessage })),
      ];
      if (first) throw validationFailed([first, ...rest]);
    });
  },
  { name: 'repeated-parameters' },
);
