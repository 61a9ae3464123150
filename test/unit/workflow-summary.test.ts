import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { workflowSummary, workflowSummaryMaxBytes } from '../../src/kinds/declaration.js';
import { vlogKind } from '../../src/kinds/vlog/declaration.js';

const bytesStored = (summary: string) => Buffer.byteLength(JSON.stringify(summary));

const vlog = (title: string) =>
  workflowSummary(vlogKind, {
    type: 'VLOG',
    input: {
      title,
      prompt: null,
      style: null,
      durationSeconds: 8,
      aspectRatio: '16:9',
      media: [],
    } as never,
  });

// A Temporal server refuses a start whose summary is over its limit (Temporal documents 200
// bytes): a vlog with a long title in Chinese made a 620-byte summary, and the Web UI rendered
// a title's Markdown link as a link in operators' screens.
describe("a workflow's summary in the Web UI", () => {
  it('is the kind’s line as it is when it is short and plain', () => {
    assert.equal(vlog('Beach day'), 'Vlog "Beach day": 0 files, 8s 16:9');
  });

  it('fits the summary limit whatever the title’s script, cut with an ellipsis', () => {
    for (const title of ['海'.repeat(200), 'a'.repeat(200), '"'.repeat(200), '🌊'.repeat(200)]) {
      const summary = vlog(title);
      assert.ok(bytesStored(summary) <= workflowSummaryMaxBytes, `${bytesStored(summary)} bytes`);
      assert.ok(summary.endsWith('…'), summary);
      assert.ok(summary.length > 40, `only ${summary.length} characters kept`);
      assert.ok(!summary.includes('\uFFFD'), 'no character cut in half');
    }
  });

  it('shows what a user wrote as typed, never as Markdown', () => {
    assert.equal(
      vlog('[win](https://evil.example) <b>*now*</b>'),
      'Vlog "\\[win\\]\\(https://evil.example\\) \\<b\\>\\*now\\*\\</b\\>": 0 files, 8s 16:9',
    );
  });

  it('never leaves an escape without the character it escapes', () => {
    for (let length = 50; length < 80; length += 1) {
      const summary = vlog(`${'x'.repeat(length)}${'['.repeat(100)}`);
      const beforeEllipsis = /(\\*)…$/.exec(summary)![1]!;
      assert.equal(beforeEllipsis.length % 2, 0, summary);
    }
  });
});
