// `npm run bench -- render`: how fast the local provider renders on this machine, as seconds of
// output video ÷ seconds of wall time, for the default 720p and for 1080p. Analyses and renders
// two photos and a clip with the real LocalMediaAnalyzer and LocalVideoGenerator (no Temporal,
// no database).
import { Readable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MediaRef } from '../../../src/jobs/contracts.js';
import type { VlogAnalysis } from '../../../src/kinds/vlog/declaration.js';
import {
  findMediaTools,
  mediaToolsVersion,
  type RenderProgress,
} from '../../../src/media/tools.js';
import { LocalMediaAnalyzer } from '../../../src/providers/local-analyzer.js';
import { LocalVideoGenerator } from '../../../src/providers/local-generator.js';
import { LocalMediaStorage } from '../../../src/storage/local-storage.js';
import { renderTestPhoto, renderTestVideo } from '../../../test/fixtures/media.js';

import type { Scenario } from '../scenario.js';
import { printFigure } from '../stats.js';
import { defaultMaxImagePixels } from '../../../src/config.js';

export const renderScenario: Scenario = {
  name: 'render',
  summary: 'local renders: seconds of output video ÷ seconds of wall time, 720p and 1080p',
  async run({ size, smoke }) {
    const seconds = size('seconds', 8, 2);
    // --smoke: small inputs and one output, to check the path in seconds.
    const [photo, portrait, clip, clipSeconds] = smoke
      ? ['640x480', '360x640', '640x360', 2]
      : ['4032x3024', '1080x1920', '1920x1080', 10];
    const tools = await findMediaTools();
    if (!tools) throw new Error('No ffmpeg found');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-bench-render-'));
    const storage = new LocalMediaStorage(path.join(dir, 'storage'), {
      publicUrl: 'http://127.0.0.1',
      secret: 'bench',
    });

    const fixtures: [string, 'image' | 'video', string, Buffer][] = [
      [
        'sunrise.jpg',
        'image',
        'image/jpeg',
        await renderTestPhoto(tools.ffmpeg, 'jpg', { size: photo }),
      ],
      [
        'friends.png',
        'image',
        'image/png',
        await renderTestPhoto(tools.ffmpeg, 'png', { size: portrait }),
      ],
      [
        'waves.mp4',
        'video',
        'video/mp4',
        await renderTestVideo(tools.ffmpeg, clipSeconds, {
          size: clip,
          source: 'testsrc2',
          audio: true,
        }),
      ],
    ];
    const media: MediaRef[] = [];
    for (const [name, kind, contentType, bytes] of fixtures) {
      const key = `uploads/bench/${name}`;
      const { size } = await storage.putStream(key, Readable.from([bytes]), contentType);
      media.push({ key, name, kind, contentType, size, sha256: '' });
    }
    const openMedia = (ref: MediaRef) => storage.getStream(ref.key);

    console.log(`ffmpeg: ${tools.ffmpeg}\n  ${await mediaToolsVersion(tools)}`);
    console.log(`media: ${photo} JPEG, ${portrait} PNG, ${clipSeconds} s ${clip} clip with sound`);

    const analysisStarted = performance.now();
    const analysis = JSON.parse(
      await new LocalMediaAnalyzer(tools, { maxImagePixels: defaultMaxImagePixels }).analyze({
        jobId: 'bench',
        media,
        brief: { title: 'Bench day', prompt: null, style: null, durationSeconds: seconds },
        openMedia,
        progress: () => undefined,
        signal: new AbortController().signal,
      }),
    ) as VlogAnalysis;
    console.log(`analysis: ${((performance.now() - analysisStarted) / 1000).toFixed(2)} s wall`);

    const outputs = [
      [720, '16:9'],
      [720, '9:16'],
      [1080, '16:9'],
    ] as const;
    for (const [height, aspectRatio] of smoke ? outputs.slice(0, 1) : outputs) {
      const generator = new LocalVideoGenerator({
        tools,
        storage,
        workDir: path.join(dir, 'work'),
        height,
        maxImagePixels: defaultMaxImagePixels,
      });
      let last: RenderProgress | null = null;
      const started = performance.now();
      await generator.start(
        {
          prompt: analysis.videoPrompt,
          aspectRatio,
          durationSeconds: seconds,
          outputUri: `media:renders/bench-${height}-${aspectRatio.replace(':', 'x')}/`,
          title: 'Bench day',
          media,
          analysis,
        },
        {
          signal: new AbortController().signal,
          openMedia,
          progress: (progress) => (last = progress),
        },
      );
      const wall = (performance.now() - started) / 1000;
      const speed = (last as RenderProgress | null)?.speed;
      printFigure(
        `render ${height}p ${aspectRatio}`,
        {
          label: `output video, ffmpeg speed ${speed ? `${speed}x` : 'n/a'}`,
          value: seconds,
          unit: 's',
        },
        { label: 'wall time', value: wall, unit: 's' },
      );
    }
    await rm(dir, { recursive: true, force: true });
  },
};
