// One user's uploads are inspected one at a time on an API process, so that they cannot hold
// every inspection slot while another user's upload waits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnsByUser } from '../../src/api/services/turns-by-user.js';

/** Once every promise callback queued so far has run. */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A piece of work that ends when told to, and says whether it has started. */
function gated() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const state = { started: false };
  return {
    state,
    release,
    work: async () => {
      state.started = true;
      await gate;
      return 'done';
    },
  };
}

describe('turns by user', () => {
  it("runs one user's work one at a time in order, and other users' at once", async () => {
    const turns = new TurnsByUser();
    const [first, second, third, other] = [gated(), gated(), gated(), gated()];
    const runs = [
      turns.run('bob', first.work),
      turns.run('bob', second.work),
      turns.run('bob', third.work),
      turns.run('alice', other.work),
    ];
    await settled();
    assert.deepEqual(
      [first, second, third, other].map(({ state }) => state.started),
      [true, false, false, true],
    );
    first.release();
    await runs[0];
    await settled();
    assert.deepEqual([second.state.started, third.state.started], [true, false]);
    second.release();
    third.release();
    other.release();
    assert.deepEqual(await Promise.all(runs), ['done', 'done', 'done', 'done']);
    assert.equal(turns.users, 0);
  });

  it('passes the next turn on when work fails', async () => {
    const turns = new TurnsByUser();
    const failed = turns.run('bob', () => Promise.reject(new Error('refused')));
    const next = turns.run('bob', async () => 'next');
    await assert.rejects(failed, /refused/);
    assert.equal(await next, 'next');
    assert.equal(turns.users, 0);
  });
});
