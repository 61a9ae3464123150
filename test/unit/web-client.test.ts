// The pure parts of the web page: putting a streamed model answer together, ordering the events
// of a progress stream when a new stream replays what an earlier one delivered, holding the
// files it measured to the API's limits, and what a `#token=` link may do to a session.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamedAnswer, itemsSoFar } from '../../src/web/client/answer-items.js';
import { checkMeasured } from '../../src/web/client/file-checks.js';
import { describeToken, linkTokenEffect } from '../../src/web/client/session-token.js';
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

describe('files the web page measured before upload', () => {
  const rules = {
    maxFiles: 3,
    maxFileBytes: 1_000_000,
    maxVideoSeconds: 60,
    maxVideoSide: 1_920,
    maxImagePixels: 10_000_000,
    mediaTypes: { 'image/jpeg': 'image', 'video/mp4': 'video' } as const,
    extensions: { jpg: 'image', mp4: 'video', mov: 'video' } as const,
  };
  const file = (name: string, type = '') => ({ name, size: 1_000, type });

  it('holds a photo to its pixels and a clip to its longest side and length, as the API does', () => {
    const photo = checkMeasured(
      file('big.jpg', 'image/jpeg'),
      { width: 4_000, height: 3_000, durationSeconds: null },
      rules,
    );
    assert.deepEqual(photo, {
      code: 'MEDIA_RESOLUTION_TOO_HIGH',
      message:
        'media: big.jpg is 4000×3000 (12000000 pixels), over the limit of 10000000 pixels for a photo',
    });
    // The browser gives no type for a .mov on some systems: the name says it is a clip.
    const wide = checkMeasured(
      file('wide.mov'),
      { width: 3_840, height: 1_080, durationSeconds: 5 },
      rules,
    );
    assert.equal(wide?.code, 'MEDIA_RESOLUTION_TOO_HIGH');
    assert.match(
      wide?.message ?? '',
      /^media: wide\.mov is 3840×1080, over the limit of 1920 pixels/,
    );
    const long = checkMeasured(
      file('long.mp4', 'video/mp4'),
      { width: 1_280, height: 720, durationSeconds: 90.04 },
      rules,
    );
    assert.deepEqual(long, {
      code: 'MEDIA_TOO_LONG',
      message: 'media: long.mp4 lasts 90 s, over the limit of 60 s for a clip',
    });
    assert.equal(
      checkMeasured(
        file('ok.mp4', 'video/mp4'),
        { width: 1_920, height: 1_080, durationSeconds: 60 },
        rules,
      ),
      null,
    );
  });
});

describe('a #token= link on the web page', () => {
  const token = (claims: object) =>
    `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
  const alice = describeToken(token({ sub: 'alice', exp: 2_000_000_000 }));
  const bob = describeToken(token({ sub: 'bob' }));

  it('reads the user and expiry a token names, and none from one it cannot read', () => {
    assert.equal(alice.user, 'alice');
    assert.equal(alice.expiresAt?.toISOString(), '2033-05-18T03:33:20.000Z');
    assert.deepEqual(describeToken(' Bearer not-a-token '), {
      token: 'not-a-token',
      user: null,
      expiresAt: null,
    });
  });

  it('signs in only where there is no session; over one, refreshes the same user (not to a sooner end) and asks for another', () => {
    assert.equal(linkTokenEffect(null, bob), 'sign-in');
    assert.equal(linkTokenEffect(alice, describeToken(token({ sub: 'alice' }))), 'refresh');
    const later = describeToken(token({ sub: 'alice', exp: 2_000_000_001 }));
    assert.equal(linkTokenEffect(alice, later), 'refresh');
    // A token of the same user that would end the session sooner is not taken.
    const sooner = describeToken(token({ sub: 'alice', exp: 1_999_999_999 }));
    assert.equal(linkTokenEffect(alice, sooner), 'keep');
    assert.equal(linkTokenEffect(alice, bob), 'ask');
    // A token that names no user is never taken for the same one.
    const nameless = describeToken(token({}));
    assert.equal(linkTokenEffect(alice, nameless), 'ask');
    assert.equal(linkTokenEffect(nameless, nameless), 'ask');
  });

  it('asks in a tab with no session when this browser last signed in as another user', () => {
    assert.equal(linkTokenEffect(null, bob, 'alice'), 'ask');
    assert.equal(linkTokenEffect(null, bob, 'bob'), 'sign-in');
    assert.equal(linkTokenEffect(null, bob, null), 'sign-in');
    assert.equal(linkTokenEffect(null, describeToken(token({})), 'alice'), 'ask');
  });
});
