// `npm run web:api-types`: writes the web page's API types (src/web/client/api-types.ts) from
// the OpenAPI document the routes make, after a route's schema changed.
import { writeFile } from 'node:fs/promises';
import { apiTypesPath, generateApiTypes } from '../src/web/api-types.js';

await writeFile(apiTypesPath, await generateApiTypes());
console.log(`wrote ${apiTypesPath}`);
