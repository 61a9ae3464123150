import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startBanner, type StartBannerFacts } from '../../src/start-banner.js';

describe('the banner npm start prints', () => {
  const facts: StartBannerFacts = {
    apiUrl: 'http://127.0.0.1:3000',
    token: { value: 'eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl', hours: 12 },
    temporalUiUrl: 'http://127.0.0.1:8233',
    temporalNamespace: 'vlogflow',
    databaseUrl: undefined,
    dataDir: '/srv/vlogflow',
    textGenerator: { provider: 'openai', model: 'gpt-4o-mini', notice: null },
  };
  const line = (banner: string, label: string) =>
    banner.split('\n').find((text) => text.startsWith(`  ${label}:`));

  it('links the web page with the local token in the fragment, which a browser never sends', () => {
    const banner = startBanner(facts);
    assert.equal(
      line(banner, 'Web page'),
      '  Web page:     http://127.0.0.1:3000/#token=eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl',
    );
    assert.match(banner, /^ {2}export TOKEN=eyJhbGciOiJIUzI1NiJ9\.e30\.c2lnbmF0dXJl$/m);
  });

  // AI_PROVIDER=none: the API refuses AI jobs with 503, so the banner offers none to try.
  it('offers an AI job to try only when AI jobs run', () => {
    assert.match(startBanner(facts), /curl -s -X POST http:\/\/127\.0\.0\.1:3000\/api\/ai\/jobs /);
    const off = startBanner({ ...facts, textGenerator: null });
    assert.equal(line(off, 'AI jobs'), '  AI jobs:      off (AI_PROVIDER=none)');
    assert.doesNotMatch(off, /\/api\/ai\/jobs/);
    assert.match(off, /curl -s -X POST http:\/\/127\.0\.0\.1:3000\/api\/probes /);
  });

  it('in production (AUTH_JWKS_URL set) links the bare page and prints no token anywhere', () => {
    const banner = startBanner({ ...facts, token: null });
    assert.equal(
      line(banner, 'Web page'),
      '  Web page:     http://127.0.0.1:3000/   (sign in with a token from your identity provider)',
    );
    assert.doesNotMatch(banner, /#token=/);
    assert.doesNotMatch(banner, /eyJ/, 'no JWT in the text');
    assert.match(banner, /^Tokens come from your identity provider \(AUTH_JWKS_URL\):$/m);
    assert.match(banner, /^ {2}export TOKEN=<its JWT>$/m);
  });
});
