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
