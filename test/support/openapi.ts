import type { FastifyInstance } from 'fastify';

/** One operation of the API's OpenAPI document, as the tests that walk every route read it. */
export interface DocumentedOperation {
  /** Upper case, as `inject` takes it. */
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS';
  /** The documented path, parameters in braces (`/api/jobs/{id}`). */
  path: string;
  /** The path with every parameter `x`: a URL that reaches the route. */
  url: string;
  tags: string[];
  queryParameters: string[];
  /** Header parameters, lower case. */
  headerParameters: string[];
  /** The statuses of its documented responses (`200`, `304`…). */
  responses: string[];
  /** Those of them documented with no content (no body). */
  responsesWithoutBody: string[];
  /** The body's content types, none for an operation without a body. */
  bodyTypes: string[];
  /** Whether the document says a request must have a body (`requestBody.required`). */
  bodyRequired: boolean;
}

interface OperationObject {
  tags?: string[];
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Record<string, unknown>; required?: boolean };
  responses?: Record<string, { content?: unknown }>;
}

/**
 * Every operation the served OpenAPI document lists: tests that check a rule on every route
 * read the routes from it, so a route added later is checked too.
 */
export async function documentedOperations(app: FastifyInstance): Promise<DocumentedOperation[]> {
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{
    paths: Record<string, Record<string, OperationObject>>;
  }>();
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      method: method.toUpperCase() as DocumentedOperation['method'],
      path,
      url: path.replace(/\{\w+\}/g, 'x'),
      tags: operation.tags ?? [],
      queryParameters: (operation.parameters ?? [])
        .filter((parameter) => parameter.in === 'query')
        .map((parameter) => parameter.name),
      headerParameters: (operation.parameters ?? [])
        .filter((parameter) => parameter.in === 'header')
        .map((parameter) => parameter.name.toLowerCase()),
      responses: Object.keys(operation.responses ?? {}),
      responsesWithoutBody: Object.entries(operation.responses ?? {})
        .filter(([, response]) => response.content === undefined)
        .map(([status]) => status),
      bodyTypes: Object.keys(operation.requestBody?.content ?? {}),
      bodyRequired: operation.requestBody?.required === true,
    })),
  );
}
