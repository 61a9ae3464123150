import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStreamLinks } from '../../src/api/services/stream-links.js';

describe('signed progress-stream links', () => {
  let now = Date.parse('2026-12-04T12:00:00Z');
  const links = createStreamLinks('secret', 900, () => now);
  const vlog1 = { kind: 'vlog', jobId: 'vlog-1' };

  it('opens only the stream it was made for, as the user it names, until it expires', () => {
    const { access, expiresAt } = links.sign('auth0|ada', vlog1);
    assert.equal(expiresAt.toISOString(), '2026-12-04T12:15:00.000Z');
    assert.equal(links.verify(access, vlog1), 'auth0|ada');
    assert.equal(links.verify(access, { kind: 'vlog', jobId: 'vlog-2' }), null, 'another job');
    now += 900_000;
    assert.equal(links.verify(access, vlog1), 'auth0|ada', 'the last second');
    now += 1_000;
    assert.equal(links.verify(access, vlog1), null, 'expired');
  });

  it("opens a job's stream on its own kind's route only", () => {
    now = Date.parse('2026-12-04T12:00:00Z');
    const aiJob = { kind: 'ai', jobId: 'ai-1' };
    const { access } = links.sign('ada', aiJob);
    assert.equal(links.verify(access, aiJob), 'ada');
    assert.equal(links.verify(access, { kind: 'vlog', jobId: 'ai-1' }), null, "the vlogs' route");
  });

  it('refuses a link changed in any part, or signed with another secret', () => {
    now = Date.parse('2026-12-04T12:00:00Z');
    const { access } = links.sign('ada', vlog1);
    const [expires, user, signature] = access.split('.') as [string, string, string];
    const forged = [
      `${Number(expires) + 3600}.${user}.${signature}`,
      `${expires}.${Buffer.from('bob').toString('base64url')}.${signature}`,
      `${expires}.${user}.${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`,
      `${expires}.${user}`,
      createStreamLinks('other', 900, () => now).sign('ada', vlog1).access,
      '',
    ];
    for (const access of forged) assert.equal(links.verify(access, vlog1), null, access);
  });

  it('refuses a link whose user is spelt otherwise, with bits the decoder drops', () => {
    now = Date.parse('2026-12-04T12:00:00Z');
    const { access } = links.sign('adam', vlog1);
    const [expires, user, signature] = access.split('.') as [string, string, string];
    assert.equal(user, 'YWRhbQ');
    const spelt = `${expires}.YWRhbR.${signature}`;
    assert.equal(Buffer.from('YWRhbR', 'base64url').toString(), 'adam');
    assert.equal(links.verify(access, vlog1), 'adam');
    assert.equal(links.verify(spelt, vlog1), null);
  });
});
