/**
 * The shape of every job id the service makes (`ids.ts`, held to it by a test): its kind, a
 * dash and a UUID. The module imports nothing, so the web page checks with it the ids its
 * address names before it asks the API about them.
 */
const jobIdShape = /^[a-z][a-z0-9]*-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isJobIdShaped(id: string): boolean {
  return jobIdShape.test(id);
}
