import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readJobEvents } from '../../src/db/job-events.js';
import { jobEventId } from '../../src/jobs/job-event.js';
import { pageTimeoutMs, startBrowser, type BrowserSession } from './browser.js';
import { startPageStack, type PageStack } from './stack.js';

/** What a page's EventSource received, recorded by the page. */
interface StreamSeen {
  seen: { type: string; id: string }[];
  closed: boolean;
}

// One Chromium and one service stack for the whole file: tests run one after another, each as
// its own user, and each puts back what it changed in the stack.
describe('the web page in a real browser', () => {
  let stack: PageStack;
  let session: BrowserSession;

  before(async () => {
    [stack, session] = await Promise.all([startPageStack(), startBrowser('web-page')]);
  });
  after(async () => {
    await session?.close();
    await stack?.stop();
  });

  /** Ids of the job's logged events, in order: what a stream of it must deliver. */
  async function loggedIds(jobId: string): Promise<string[]> {
    const log = await readJobEvents(stack.harness.db, [{ jobId, afterSeq: -1 }], 1_000);
    return log.map(({ event }) => jobEventId(event));
  }

  it("a browser's EventSource follows a job through a signed link to its end, once, and stops", async () => {
    const user = stack.api().user('streamer');
    const { id } = await user.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Film a day at the beach' },
    });
    const link = await user.post(`/api/ai/jobs/${id}/events/link`);
    assert.equal(link.statusCode, 201, link.body);
    const { url } = link.json<{ url: string }>();

    await session.withPage('event-source', {}, async ({ page, step, problems }) => {
      const opened: Promise<string>[] = [];
      page.on('request', (request) => {
        if (request.url().includes(`/api/ai/jobs/${id}/events`))
          opened.push(
            request.allHeaders().then((headers) => headers['last-event-id'] ?? '(first)'),
          );
      });
      // Any page of the API's origin: the stream is opened from there, as the web page opens it.
      await page.goto(`${stack.baseUrl}/healthz`);
      await page.evaluate((streamUrl) => {
        const seen: StreamSeen['seen'] = [];
        const source = new EventSource(streamUrl);
        const state: StreamSeen = { seen, closed: false };
        Object.assign(globalThis, { stream: state });
        for (const type of ['status', 'progress', 'output', 'end']) {
          source.addEventListener(type, (event) =>
            seen.push({ type, id: (event as MessageEvent).lastEventId }),
          );
        }
        source.addEventListener('error', () => {
          state.closed = source.readyState === EventSource.CLOSED;
        });
      }, url);
      await page.waitForFunction(
        () => (globalThis as unknown as { stream: StreamSeen }).stream.closed,
        null,
        { timeout: pageTimeoutMs },
      );
      const { seen } = await page.evaluate(
        () => (globalThis as unknown as { stream: StreamSeen }).stream,
      );
      await step('stream closed');

      const ended = seen.filter((event) => event.type === 'end');
      assert.equal(ended.length, 1, 'the end is delivered once');
      assert.deepEqual(
        seen.filter((event) => event.type !== 'end').map((event) => event.id),
        await loggedIds(id),
        'every logged event, once, in order',
      );
      // The reconnect after the end carries the end's id and is answered 204, which stops it.
      assert.deepEqual(await Promise.all(opened), ['(first)', ended[0]!.id]);
      // The health probe's answer, a JSON document, has no icon: the browser's ask for one is a 404.
      assert.deepEqual(
        problems().filter((problem) => !problem.endsWith('/favicon.ico)')),
        [],
      );
    });
  });
});
