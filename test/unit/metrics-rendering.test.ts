import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { acceptsGzip } from '../../src/api/plugins/metrics.js';
import { rationedRendering } from '../../src/metrics/exposition.js';

/** A render whose runs the test ends one by one, each answering its number. */
function controlledRender() {
  const runs: (() => void)[] = [];
  return {
    runs,
    render: () =>
      new Promise<string>((resolve) => {
        const run = runs.length + 1;
        runs.push(() => resolve(`rendering ${run}\n`));
      }),
  };
}

const text = async (answer: Promise<{ text: Buffer }>) => (await answer).text.toString();

describe('renderings of /metrics', () => {
  it('are shared by the scrapes that come while one runs', async () => {
    let now = 0;
    const { runs, render } = controlledRender();
    const scrape = rationedRendering(render, { perSecond: 4, now: () => now });
    const together = [scrape(), scrape(), scrape()];
    assert.equal(runs.length, 1);
    runs[0]!();
    assert.deepEqual(await Promise.all(together.map(text)), Array(3).fill('rendering 1\n'));
    now += 10;
    const next = scrape();
    runs[1]!();
    assert.equal(await text(next), 'rendering 2\n', 'a scrape after it gets a fresh one');
  });

  it('are rationed per second: past the ration a scrape gets the latest, and fresh ones come back a second on', async () => {
    let now = 0;
    const { runs, render } = controlledRender();
    const scrape = rationedRendering(render, { perSecond: 2, now: () => now });
    for (const expected of ['rendering 1\n', 'rendering 2\n']) {
      const answer = scrape();
      runs.at(-1)!();
      assert.equal(await text(answer), expected);
      now += 100;
    }
    for (let flood = 0; flood < 50; flood += 1) {
      assert.equal(await text(scrape()), 'rendering 2\n');
      now += 10;
    }
    assert.equal(runs.length, 2, 'the flood rendered nothing');
    now = 1_000;
    const fresh = scrape();
    runs.at(-1)!();
    assert.equal(await text(fresh), 'rendering 3\n');
  });

  it('serve no failed rendering after it, and gzip each one', async () => {
    let fail = true;
    const scrape = rationedRendering(
      async () => {
        if (fail) throw new Error('registry broke');
        return 'metric 1\n';
      },
      { perSecond: 1, now: () => 0 },
    );
    await assert.rejects(scrape(), /registry broke/);
    fail = false;
    const answer = await scrape();
    assert.equal(gunzipSync(answer.gzipped).toString(), 'metric 1\n');
  });

  it('are gzipped for a client that takes gzip', () => {
    for (const header of ['gzip', 'deflate, gzip;q=0.5', 'GZIP', '*', 'br, *;q=1']) {
      assert.equal(acceptsGzip(header), true, header);
    }
    for (const header of [undefined, '', 'identity', 'gzip;q=0', 'gzip; q=0.000', 'x-gzip2']) {
      assert.equal(acceptsGzip(header), false, String(header));
    }
  });
});
