import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure, type Context } from '@temporalio/activity';
import { toFailure } from '../../src/activities/provider-calls.js';
import type { MediaRef } from '../../src/jobs/contracts.js';
import { findMediaTools, type MediaTools } from '../../src/media/tools.js';
import { LocalVideoGenerator } from '../../src/providers/local-generator.js';
import { ProviderError } from '../../src/providers/types.js';
import type { ObjectStorage } from '../../src/storage/object-storage.js';
import { controlledRenders, fontconfigNoise, signalledMediaTools } from '../fakes/media-tools.js';
import { renderTestPhoto } from '../fixtures/media.js';
import { defaultMaxImagePixels } from '../../src/config.js';

// How a local render that does not finish is judged: a file or a filter graph ffmpeg refuses
// fails the vlog for good; ffmpeg or ffprobe stopped by a signal its job did not send (a
// terminal's Ctrl-C reaching it, an operator, the out-of-memory killer) says nothing about the
// vlog, and the step is retried, the render from scratch.
describe('the local renderer tells a signal from a refusal', () => {
  let tools: MediaTools;
  let dir: string;
  let photo: Buffer;
  const media: MediaRef[] = [
    {
      key: 'photo',
      name: 'photo.jpg',
      kind: 'image',
      contentType: 'image/jpeg',
      size: 0,
      sha256: '',
    },
  ];

  before(async () => {
    const found = await findMediaTools();
    assert.ok(found);
    tools = found;
    dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-local-generator-'));
    photo = await renderTestPhoto(tools.ffmpeg, 'jpg');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** What one render attempt with these tools throws. */
  async function renderFailure(renderTools: MediaTools): Promise<ProviderError> {
    const generator = new LocalVideoGenerator({
      tools: renderTools,
      // Nothing is stored: every render here fails before its output would be.
      storage: {} as ObjectStorage,
      workDir: path.join(dir, 'work'),
      height: 144,
      maxImagePixels: defaultMaxImagePixels,
    });
    const failure = await generator
      .start(
        {
          prompt: 'a vlog',
          aspectRatio: '16:9',
          durationSeconds: 4,
          outputUri: 'media:renders/vlog-test/attempt-1/',
          title: 'Signals',
          media,
          analysis: null,
        },
        {
          signal: new AbortController().signal,
          openMedia: () => Promise.resolve(Readable.from([photo])),
          progress: () => undefined,
        },
      )
      .then(
        () => assert.fail('the render succeeded'),
        (error: unknown) => error,
      );
    assert.ok(failure instanceof ProviderError, String(failure));
    return failure;
  }

  /** The activity failure a provider error becomes (toFailure), as Temporal sees it. */
  function activityFailure(error: ProviderError): ApplicationFailure {
    const context = { cancellationSignal: new AbortController().signal } as Context;
    const failure = toFailure(error, context, 'local');
    assert.ok(failure instanceof ApplicationFailure);
    return failure;
  }

  it('a render stopped by a signal is a retryable interruption naming the signal, not the last line ffmpeg wrote', async () => {
    for (const [how, stoppedBy] of [
      ['SIGINT', 'signal SIGINT'],
      ['SIGKILL', 'signal SIGKILL'],
      // The real ffmpeg catches SIGINT and SIGTERM, stops and exits 255.
      ['exit 255', 'a signal (SIGINT or SIGTERM, exit code 255)'],
    ] as const) {
      const signalled = await signalledMediaTools(tools, dir, how);
      const error = await renderFailure({ ...tools, ffmpeg: signalled.ffmpeg });
      assert.equal(error.code, 'MEDIA_PROCESSING_INTERRUPTED', how);
      assert.equal(error.retryable, true, how);
      assert.equal(error.message, `The render did not finish: ffmpeg was stopped by ${stoppedBy}`);
      assert.ok(!error.message.includes(fontconfigNoise), error.message);
      const failure = activityFailure(error);
      assert.equal(failure.type, 'MEDIA_PROCESSING_INTERRUPTED');
      assert.equal(failure.nonRetryable, false);
    }
  });

  it('a probe of an upload stopped by a signal is a retryable interruption naming the file', async () => {
    const signalled = await signalledMediaTools(tools, dir, 'SIGTERM');
    const error = await renderFailure({ ...tools, ffprobe: signalled.ffprobe });
    assert.equal(error.code, 'MEDIA_PROCESSING_INTERRUPTED');
    assert.equal(error.retryable, true);
    assert.equal(
      error.message,
      'photo.jpg: probe interrupted: ffprobe was stopped by signal SIGTERM',
    );
  });

  it('a render ffmpeg refuses by itself stays a permanent GENERATION_FAILED with its own words', async () => {
    const controlled = await controlledRenders(tools, dir);
    await controlled.failNextRender();
    const error = await renderFailure(controlled.tools);
    assert.equal(error.code, 'GENERATION_FAILED');
    assert.equal(error.retryable, false);
    assert.equal(
      error.message,
      'ffmpeg could not render the vlog: Conversion failed! (the test told this render to fail)',
    );
    assert.equal(activityFailure(error).nonRetryable, true);
  });
});
