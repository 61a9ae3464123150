/**
 * Every job id starts with its kind and a dash (`ids.ts`, held to it by a test). The module
 * imports nothing, so the web page checks with it the ids its address names before it asks the
 * API about them: a path reads some others (`.`, `..`, `upload-limits`) as another route.
 */
export function isJobIdOf(kind: string, id: string): boolean {
  return id.length > kind.length + 1 && id.startsWith(`${kind}-`);
}
