import { hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import { pollIntervalSeconds, type PollIntervals } from '../services/job-views.js';
import type { WorkerWaits } from '../services/worker-waits.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route answers one job's view (its read, or the 202 of its start): a read's answer
     * carries X-Poll-Interval while the job is in flight.
     */
    jobView?: boolean;
    /**
     * The route answers a list of job views under this key of its answer (`jobs`, `vlogs`):
     * each carries `waitingForWorker` as a job's own read does.
     */
    jobList?: string;
  }
}

const ifNoneMatchHeaders = z
  .object({
    'if-none-match': z
      .string()
      .optional()
      .describe(
        'ETags of views the client holds (`"…"`, `W/"…"`, a list, or `*`): 304 if one is current',
      ),
  })
  .passthrough();

const notModified = z
  .null()
  .describe(
    'The view is the one an ETag of If-None-Match names: no body, the same ETag (and X-Poll-Interval)',
  );

/** Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks for it). */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || opaque(tag) === opaque(etag));
}

/**
 * Makes polling cheap for clients and honest about when to poll again, on every route of
 * `scope`:
 *
 * - every 200 answer to a GET carries a strong ETag, the hash of the exact bytes served, so it
 *   changes whenever anything in the view does (status, progress, `?live=true` answers, signed
 *   links that were renewed); a GET or HEAD whose If-None-Match names it is answered 304 with
 *   no body and no Content-Length;
 * - a job view (routes with `config.jobView`) carries X-Poll-Interval, in seconds, while the job
 *   is in flight, and none once it has ended; and `waitingForWorker` while no worker polls the
 *   queue the job waits in (WorkerWaits), the start's 202 too, as does each job of a list
 *   (routes with `config.jobList`);
 * - a job view is written with JSON.stringify, not checked against its response schema on every
 *   poll or start: its answers are built by toJobView (and liveView), typed as that schema, and
 *   the check cost a tenth of the API's time per read. The schema still documents the route.
 */
export const conditionalReads = fp(
  async (
    scope: FastifyInstance,
    { intervals, waits }: { intervals: PollIntervals; waits: WorkerWaits },
  ) => {
    scope.addHook('onRoute', (route) => {
      if (route.config?.jobView) route.serializerCompiler = () => (data) => JSON.stringify(data);
      // Documented for clients generated from the OpenAPI document: the header they may send,
      // and the 304 they then get. A stream's GET answers no ETag (it is not one view).
      const responses = route.schema?.response as Record<string, unknown> | undefined;
      if (route.method !== 'GET' || !responses?.[200] || route.config?.streamLink) return;
      route.schema = {
        ...route.schema,
        headers: route.schema?.headers ?? ifNoneMatchHeaders,
        response: { ...responses, 304: notModified },
      };
    });

    type ListedJob = { status: string; phase: string | null; workflowId: string };
    const withWaits = (job: ListedJob) => {
      const waitingForWorker = waits.of(job);
      return waitingForWorker ? { ...job, waitingForWorker } : job;
    };
    scope.addHook('preSerialization', async (request, reply, payload) => {
      const { jobView, jobList } = request.routeOptions.config;
      if (reply.statusCode >= 300) return payload;
      if (jobList) {
        const list = payload as Record<string, ListedJob[]>;
        return { ...list, [jobList]: list[jobList]?.map(withWaits) };
      }
      if (!jobView) return payload;
      const job = payload as ListedJob;
      const seconds = reply.statusCode === 200 ? pollIntervalSeconds(job, intervals) : null;
      if (seconds !== null) reply.header('x-poll-interval', String(seconds));
      return withWaits(job);
    });

    scope.addHook('onSend', async (request, reply, payload) => {
      const isRead = request.method === 'GET' || request.method === 'HEAD';
      if (!isRead || reply.statusCode !== 200 || typeof payload !== 'string') return payload;
      const etag = `"${hash('sha256', payload, 'base64url')}"`;
      // Each answer is the caller's own: caches keep it for them only, and ask again each time.
      void reply.header('etag', etag).header('cache-control', 'private, no-cache');
      if (!noneMatch(request.headers['if-none-match'], etag)) return payload;
      void reply.code(304).removeHeader('content-type');
      // Null drops the body. Fastify's HEAD handling runs after this hook and cannot take null
      // (it throws), and would give an empty string a Content-Length of 0, which a 304 must not
      // have (RFC 9110, 8.6); an empty stream it drains and sends no Content-Length for.
      return request.method === 'HEAD' ? Readable.from([]) : null;
    });
  },
  { name: 'conditional-reads' },
);
