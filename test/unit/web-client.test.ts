// The pure parts of the web page: putting a streamed model answer together, and ordering the
// events of a progress stream when a new stream replays what an earlier one delivered.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamedAnswer, itemsSoFar } from '../../src/web/client/answer-items.js';
import { isAfter, parsePosition } from '../../src/web/client/stream-position.js';

describe('a streamed answer on the web page', () => {
  const items = [
    { title: 'Build a base', description: 'Run "easy" miles, {slowly}.' },
    { title: 'Add long runs', description: 'One a week]', estimatedMinutes: 90 },
  ];
  const answer = JSON.stringify({ items });

  it('shows each item once it is complete, whatever the pieces', () => {
    const seen = new Set<number>();
    for (let end = 0; end <= answer.length; end += 1) {
      const items = itemsSoFar(answer.slice(0, end));
      seen.add(items.length);
      if (end < answer.indexOf('}') + 1) assert.equal(items.length, 0, `at ${end}`);
    }
    assert.deepEqual([...seen], [0, 1, 2]);
    assert.deepEqual(itemsSoFar(answer), items);
  });

  it('starts again at offset 0 and appends at the offset given', () => {
    const streamed = new StreamedAnswer();
    streamed.add({ text: '{"items":[{"title":"Wrong","description":"x"}', offset: 0 });
    assert.equal(streamed.items()[0]?.title, 'Wrong');
    streamed.add({ text: answer.slice(0, 20), offset: 0 });
    streamed.add({ text: answer.slice(20), offset: 20 });
    assert.deepEqual(streamed.items(), items);
  });
});

describe('progress stream positions on the web page', () => {
  it('orders states, output pieces and the end as the log does', () => {
    const ids = ['1', '2', '2-1', '2-2', '3', '3-end', '4', '4-3', '5-end'];
    const positions = ids.map((id) => parsePosition(id)!);
    positions.forEach((position, index) => {
      assert.ok(isAfter(position, index === 0 ? null : positions[index - 1]!), ids[index]);
      for (const earlier of positions.slice(0, index + 1)) {
        assert.ok(
          !isAfter(earlier, position),
          `${JSON.stringify(earlier)} is not after ${ids[index]}`,
        );
      }
    });
  });
});
