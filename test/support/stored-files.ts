import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Db } from '../../src/db/database.js';
import type { VlogInput } from '../../src/kinds/vlog/declaration.js';
import type { MediaStorage } from '../../src/storage/object-storage.js';
import { eventually } from './eventually.js';

/**
 * Files under a local storage root, relative to it: objects, their metadata, partial writes and
 * multipart parts. Empty folders do not count.
 */
export async function storedFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** The media a vlog's stored input names, as its upload stored them. */
export async function storedMediaOf(db: Db, vlogId: string): Promise<VlogInput['media']> {
  const { input } = await db
    .selectFrom('jobs')
    .select('input')
    .where('id', '=', vlogId)
    .executeTakeFirstOrThrow();
  return (input as VlogInput).media;
}

/** A stored object's bytes, whole. */
export async function readStored(storage: MediaStorage, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.getStream(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Waits until the files under `root` are exactly the objects (and their metadata) of the
 * control vlog `controlId`, an upload the API accepted for the user whose refused uploads are
 * checked: seeing its files shows the listing sees what an upload stores, so no other file
 * means the refused uploads left nothing. Nor is any upload left recorded for the media sweep
 * (each request forgets its own before it answers). The control's files are removed once
 * checked, so the next check starts from an empty storage again.
 */
export async function assertStoredOnlyUploadOf(
  root: string,
  db: Db,
  controlId: string,
): Promise<void> {
  const keys = (await storedMediaOf(db, controlId)).map((media) => media.key);
  assert.ok(keys.length > 0, `the control vlog ${controlId} stored no media`);
  const expected = keys.flatMap((key) => [key, `${key}.meta.json`]).sort();
  await eventually(
    () => storedFiles(root),
    (found) => isDeepStrictEqual(found, expected),
    {
      timeoutMs: 10_000,
      what: `storage holding only the control upload of ${controlId}: ${expected.join(', ')}`,
    },
  );
  assert.deepEqual(await db.selectFrom('upload_batches').selectAll().execute(), []);
  await Promise.all(expected.map((file) => rm(path.join(root, file))));
}
