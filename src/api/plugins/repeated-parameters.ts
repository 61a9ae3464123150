// Every query parameter of the API takes one value. Fastify reads `?limit=1&limit=2` as an
// array, which each schema then refused in its own words ("expected number, received NaN",
// "expected string, received array"); this refuses it first, as a form field given twice is.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { validationFailed } from '../errors.js';

const repeatedMessage = 'given more than once';

/** Refuses, on every route of the scope, a query parameter given more than once, naming it. */
export const refuseRepeatedParameters = fp(
  async (scope: FastifyInstance) => {
    scope.addHook('preValidation', async (request) => {
      const query = (request.query ?? {}) as Record<string, unknown>;
      const [first, ...rest] = Object.entries(query)
        .filter(([, value]) => Array.isArray(value))
        .map(([name]) => ({ field: `querystring.${name}`, message: repeatedMessage }));
      if (first) throw validationFailed([first, ...rest]);
    });
  },
  { name: 'repeated-parameters' },
);
