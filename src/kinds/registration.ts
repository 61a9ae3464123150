/**
 * The Node side of a kind's registration: the declaration and what the API and the worker
 * need beyond it. Never imported by workflow code (it carries zod schemas, routes and
 * activities).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import type { JobLease } from '../db/provider-quota.js';
import type { ActivityDependencies } from '../activities/index.js';
import type { AppDependencies } from '../api/app.js';
import type { JobActions } from '../api/services/job-actions.js';
import type { StartJob } from '../api/services/job-starter.js';
import type { MediaWorkers } from '../api/services/media-workers.js';
import { taskQueueNames, type TaskQueueNames } from '../capacity/task-queues.js';
import { providerRetrySettings, type Config } from '../config.js';
import type { JobRecord, ProviderRetrySettings } from '../jobs/contracts.js';
import type { JobKindDeclaration } from './declaration.js';

/**
 * What a job's workflow takes from the API's configuration to run its activities as its kind
 * declares them (`activityOptions`): without them, every activity would run on the workflow
 * queue with no provider backoff, whatever its policy's `domain` and `retry` say.
 */
export interface JobRunSettings {
  /** The PROVIDER_RETRY_* backoff a policy's `retry: 'provider'` stands for. */
  providerRetry: ProviderRetrySettings;
  /** Each domain's task queue, where a policy's activities run. */
  taskQueues: TaskQueueNames;
}

export function jobRunSettings(config: Config): JobRunSettings {
  return {
    providerRetry: providerRetrySettings(config),
    taskQueues: taskQueueNames(config.TEMPORAL_TASK_QUEUE),
  };
}

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
  /** The OpenAPI operationId: what generated clients name the call. */
  operationId: string;
  /** The OpenAPI summary of the route. */
  summary: string;
  /**
   * The job's input as an object schema; the route adds the `concurrencyKey` every start
   * request may carry, which is not part of the input.
   */
  body: z.ZodObject & z.ZodType<Input, unknown>;
  /**
   * The workflow's arguments, built around the accepted job record; a kind with activities
   * passes `settings` on for `activityOptions`.
   */
  workflowArgs(job: JobRecord<Input>, settings: JobRunSettings): unknown[];
}

/** What a kind's own routes are built from. */
export interface KindRouteDependencies extends Pick<
  AppDependencies,
  'config' | 'db' | 'mediaStorage' | 'temporal'
> {
  /** The workers' ffmpeg, as the API learns of it from the media queue. */
  mediaWorkers: MediaWorkers;
  /** The workers' ffprobe, as the API learns of it from the upload inspection queue. */
  inspectionWorkers: MediaWorkers;
  startJob: StartJob;
  actions: JobActions;
}

/** An activity as the worker registers it: its name is the key it is listed under. */
export type ActivityFunction = (...args: never[]) => Promise<unknown>;

/**
 * One line of the registry. A kind whose start request is plain JSON has a `startRoute`; a kind
 * with uploads (vlog) or richer requests and views (ai) brings `routes` of its own, each with
 * its zod schemas (the input schema among them). A kind that does I/O brings its `activities`,
 * which `createActivities` (`src/activities/index.ts`) gathers for the worker.
 */
export interface JobKindRegistration<Type extends string = string, Input = unknown> {
  declaration: JobKindDeclaration<Type, Input>;
  startRoute?: JsonStartRoute<Input>;
  /** Its routes under `/api`, registered by `src/api/app.ts` in registry order. */
  routes?: (deps: KindRouteDependencies) => FastifyPluginAsyncZod;
  /** Its activities; their names are part of the durable contract, never renamed. */
  activities?: (deps: ActivityDependencies) => Record<string, ActivityFunction>;
  /**
   * Charges what the provider bills for one of its jobs although the job stopped looking (a
   * submitted Veo generation runs on): called when the job ends, whatever ended it (the
   * projection of its end, the reconciler for a workflow closed outside its code), possibly
   * more than once, so it charges under the calls' own keys, never twice.
   */
  chargeOnEnd?: (deps: ActivityDependencies, ended: { jobId: string }) => Promise<void>;
  /**
   * Frees the provider leases its ended jobs still hold for operations they left running, once
   * the provider says those ended: called by every run of the job reconciler. Answers the leases
   * it freed.
   */
  freeLeasesLeftRunning?: (deps: ActivityDependencies) => Promise<JobLease[]>;
}

/**
 * A kind's registration as its `index.ts` exports it, typed explicitly (the registry's types,
 * and `JobKind` from them, must not wait on inferring routes and activities) with its exact
 * declaration, so that the kind's name is known to the compiler.
 */
export type KindRegistration<Declaration extends JobKindDeclaration> = Omit<
  JobKindRegistration,
  'declaration'
> & { declaration: Declaration };
