/**
 * The Node side of a kind's registration: what the API needs beyond the pure declaration.
 * Never imported by workflow code (it carries zod schemas).
 */
import type { z } from 'zod';
import type { JobRecord } from '../jobs/contracts.js';
import type { JobKindDeclaration } from './declaration.js';

/**
 * A start route whose body is plain JSON, served by the generic `POST /api/<path>` route
 * (`src/api/routes/job-starts.ts`): the body schema gives validation, types and the OpenAPI
 * document.
 */
export interface JsonStartRoute<Input> {
  /** Under `/api`. */
  path: string;
  /** The OpenAPI tag. */
  tag: string;
  /** The OpenAPI summary of the route. */
  summary: string;
  body: z.ZodType<Input, unknown>;
  /** The workflow's arguments, built around the accepted job record. */
  workflowArgs(job: JobRecord<Input>): unknown[];
}

/**
 * One line of the registry: the declaration, and for a kind whose start request is plain JSON,
 * its start route. Kinds with uploads (vlog) or richer requests (ai) keep route modules of their
 * own in `src/api/routes` that read their declaration.
 */
export interface JobKindRegistration<Type extends string = string, Input = unknown> {
  declaration: JobKindDeclaration<Type, Input>;
  startRoute?: JsonStartRoute<Input>;
}
