import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { setTimeout as delay } from 'node:timers/promises';
import { jobSearchAttributes } from '../src/jobs/search-attributes.js';
import { connectAtStart, type TemporalEndpoint } from '../src/temporal-client.js';
import {
  customSearchAttributes,
  jobSearchAttributeTypes,
  namespaceExists,
} from '../src/temporal-namespace.js';

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
  }
  // A new namespace is described (read from the database) at once, but the operator service
  // knows it only once the frontend's namespace cache refreshes, seconds later: until
  // then it answers NOT_FOUND, which failed every first setup of a cluster's namespace.
  const deadline = Date.now() + 30_000;
  let customAttributes: Record<string, unknown> | null;
  while ((customAttributes = await customSearchAttributes(connection, namespace)) === null) {
    if (Date.now() > deadline)
      throw new Error(`namespace ${namespace} was registered but never became visible`);
    await delay(500);
  }
  const missing = jobSearchAttributes.filter((key) => !(key.name in customAttributes));
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: jobSearchAttributeTypes(missing),
    });
  }
  return { registered, addedSearchAttributes: missing.map((key) => key.name) };
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
