import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SearchAttributeType } from '@temporalio/common';
import { msToTs } from '@temporalio/common/lib/time.js';
import { setTimeout as delay } from 'node:timers/promises';
import { jobSearchAttributes } from '../src/jobs/search-attributes.js';
import { connectAtStart, type TemporalEndpoint } from '../src/temporal-client.js';

// The proto package is CommonJS without statically detectable named exports.
const IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;
const indexedValueTypes: Record<SearchAttributeType, proto.temporal.api.enums.v1.IndexedValueType> =
  {
    [SearchAttributeType.TEXT]: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    [SearchAttributeType.KEYWORD]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    [SearchAttributeType.INT]: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    [SearchAttributeType.DOUBLE]: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    [SearchAttributeType.BOOL]: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    [SearchAttributeType.DATETIME]: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    [SearchAttributeType.KEYWORD_LIST]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  };

/** The job search attributes as the operator service registers them: name → indexed type. */
export function jobSearchAttributeTypes(
  keys = jobSearchAttributes,
): Record<string, proto.temporal.api.enums.v1.IndexedValueType> {
  return Object.fromEntries(keys.map((key) => [key.name, indexedValueTypes[key.type]]));
}

/**
 * Makes a namespace ready for vlogflow: registers it when missing (a cluster; the dev server
 * creates its own at start) and adds the job search attributes it lacks. Idempotent.
 */
export async function prepareNamespace(
  connection: Connection,
  namespace: string,
  retentionDays = 7,
): Promise<{ registered: boolean; addedSearchAttributes: string[] }> {
  let registered = false;
  if (!(await namespaceExists(connection, namespace))) {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
    });
    registered = true;
    // A new namespace becomes usable once the frontend's namespace cache refreshes.
    const deadline = Date.now() + 30_000;
    while (!(await namespaceExists(connection, namespace))) {
      if (Date.now() > deadline)
        throw new Error(`namespace ${namespace} was registered but never became visible`);
      await delay(500);
    }
  }
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = jobSearchAttributes.filter((key) => !(key.name in (customAttributes ?? {})));
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((key) => [key.name, indexedValueTypes[key.type]]),
      ),
    });
  }
  return { registered, addedSearchAttributes: missing.map((key) => key.name) };
}

async function namespaceExists(connection: Connection, namespace: string): Promise<boolean> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 5 /* gRPC NOT_FOUND */) return false;
    throw error;
  }
}

/** `prepareNamespace` over a connection of its own to `endpoint`, closed once it is done. */
export async function prepareNamespaceAt(
  endpoint: TemporalEndpoint,
  namespace: string,
): Promise<Awaited<ReturnType<typeof prepareNamespace>>> {
  const connection = await connectAtStart(endpoint, (at) => Connection.connect(at));
  try {
    return await prepareNamespace(connection, namespace);
  } finally {
    await connection.close();
  }
}
