// What a Temporal namespace needs before jobs can run in it, and whether it has it. A cluster's
// namespace is prepared once by an operator (`npm run temporal:setup`, or the CLI commands in
// docs/deployment.md); without it, every job start is refused, so the worker and the API's
// readiness say so instead of answering 500 to each start.
import type { Connection } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import proto from '@temporalio/proto';
import { jobSearchAttributes } from './jobs/search-attributes.js';

// The proto package is CommonJS without statically detectable named exports.
const IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;
type IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;

const indexedValueTypes: Record<SearchAttributeType, IndexedValueType> = {
  [SearchAttributeType.TEXT]: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  [SearchAttributeType.KEYWORD]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  [SearchAttributeType.INT]: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  [SearchAttributeType.DOUBLE]: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  [SearchAttributeType.BOOL]: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  [SearchAttributeType.DATETIME]: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  [SearchAttributeType.KEYWORD_LIST]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** A search attribute type as the CLI's `--type` spells it: `Keyword`, `Int`. */
const cliTypeNames: Record<SearchAttributeType, string> = {
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

/** The job search attributes as the operator service registers them: name → indexed type. */
export function jobSearchAttributeTypes(
  keys = jobSearchAttributes,
): Record<string, IndexedValueType> {
  return Object.fromEntries(keys.map((key) => [key.name, indexedValueTypes[key.type]]));
}

/** The services a namespace is read through: a client's Connection or a worker's NativeConnection. */
export type NamespaceServices = Pick<Connection, 'workflowService' | 'operatorService'>;

const notFound = 5;
const permissionDenied = 7;
const unimplemented = 12;
const grpcCode = (error: unknown) => (error as { code?: unknown }).code;

/** Whether the namespace exists (as the workflow service, which reads the database, knows it). */
export async function namespaceExists(
  services: NamespaceServices,
  namespace: string,
): Promise<boolean> {
  try {
    await services.workflowService.describeNamespace({ namespace });
    return true;
  } catch (error) {
    if (grpcCode(error) === notFound) return false;
    throw error;
  }
}

/**
 * The namespace's custom search attributes, or null while the operator service does not know
 * the namespace: it learns of a new one only once the frontend's namespace cache refreshes.
 */
export async function customSearchAttributes(
  services: NamespaceServices,
  namespace: string,
): Promise<Record<string, IndexedValueType> | null> {
  try {
    const { customAttributes } = await services.operatorService.listSearchAttributes({
      namespace,
    });
    return customAttributes ?? {};
  } catch (error) {
    if (grpcCode(error) === notFound) return null;
    throw error;
  }
}

const setupHint =
  'run `npm run temporal:setup` against it, or see docs/deployment.md, "Namespace and search attributes"';

/**
 * The job search attributes `registered` holds with another type, as `JobAttempt (Int) is
 * registered as Keyword`, and what to do: a type cannot be changed, and setup adds only what
 * is missing, so each must be removed first.
 */
export function wronglyTypedSearchAttributes(
  registered: Record<string, IndexedValueType>,
  namespace: string,
): { problems: string[]; fix: string } | null {
  const wrong = jobSearchAttributes.filter(
    (key) =>
      registered[key.name] !== undefined && registered[key.name] !== indexedValueTypes[key.type],
  );
  if (wrong.length === 0) return null;
  const problems = wrong.map((key) => {
    const found = registered[key.name];
    const foundType = Object.entries(indexedValueTypes).find(([, type]) => type === found)?.[0];
    const foundName = cliTypeNames[foundType as SearchAttributeType] ?? String(found);
    return `${key.name} (${cliTypeNames[key.type]}) is registered as ${foundName}`;
  });
  const removals = wrong
    .map(
      (key) =>
        `\`temporal operator search-attribute remove --namespace ${namespace} --name ${key.name}\``,
    )
    .join(', ');
  return {
    problems,
    fix: `a search attribute's type cannot be changed: remove it (${removals}), then ${setupHint}`,
  };
}

/**
 * What keeps `namespace` from running jobs, in one sentence: it does not exist, or it lacks a
 * job search attribute or holds one of another type. Null when it is ready, and when the
 * credentials may not list search attributes (a Temporal Cloud key of a narrow role): then
 * nothing is known to be wrong.
 */
export async function namespaceProblem(
  services: NamespaceServices,
  namespace: string,
): Promise<string | null> {
  if (!(await namespaceExists(services, namespace)))
    return `namespace "${namespace}" does not exist: ${setupHint}`;
  let registered: Record<string, IndexedValueType> | null;
  try {
    registered = await customSearchAttributes(services, namespace);
  } catch (error) {
    if ([permissionDenied, unimplemented].includes(grpcCode(error) as number)) return null;
    throw error;
  }
  if (registered === null)
    return `namespace "${namespace}" was registered moments ago and is not served yet: ${setupHint}`;
  const missing = jobSearchAttributes
    .filter((key) => registered[key.name] === undefined)
    .map((key) => `${key.name} (${cliTypeNames[key.type]}) is missing`);
  const mistyped = wronglyTypedSearchAttributes(registered, namespace);
  if (missing.length === 0 && !mistyped) return null;
  return `namespace "${namespace}" is not set up for jobs, whose workflows set the job search attributes (Temporal refuses a start, or fails a workflow task for good, that sets one the namespace lacks): ${[...missing, ...(mistyped?.problems ?? [])].join(', ')}; ${mistyped?.fix ?? setupHint}`;
}
