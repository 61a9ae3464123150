// The web page's API types are generated from the OpenAPI document (src/web/api-types.ts) and
// committed, so the page fails its typecheck when a route it calls changes. Committed types
// that no longer match the routes would hide exactly that change: regenerate them with
// `npm run web:api-types`.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { apiTypesPath, generateApiTypes } from '../../src/web/api-types.js';

describe("the web page's generated API types", () => {
  it('are what the current routes generate (else run `npm run web:api-types`)', async () => {
    const committed = await readFile(apiTypesPath, 'utf8');
    const generated = await generateApiTypes();
    assert.ok(generated.includes("'/api/vlogs/{id}/events/link'"), 'the routes the page calls');
    // A boolean, not the two files: their diff ran to hundreds of KB, the fix out of sight.
    assert.ok(
      committed === generated,
      'src/web/client/api-types.ts is stale: run `npm run web:api-types` and commit the result',
    );
  });
});
