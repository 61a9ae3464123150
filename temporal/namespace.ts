import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { setTimeout as delay } from 'node:timers/promises';
import { CommandFailure } from '../src/entry-point.js';
import { jobSearchAttributes } from '../src/jobs/search-attributes.js';
import { connectAtStart, type TemporalEndpoint } from '../src/temporal-client.js';
import {
  customSearchAttributes,
  jobSearchAttributeTypes,
  namespaceExists,
  wronglyTypedSearchAttributes,
} from '../src/temporal-namespace.js';

/**
 * Makes a namespace ready for vlogflow: registers it when missing (a cluster; the dev server
 * creates its own at start) and adds the job search attributes it lacks. Idempotent. Refuses,
 * changing nothing, a namespace holding one of them with another type, which it cannot fix.
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
  let customAttributes: Awaited<ReturnType<typeof customSearchAttributes>>;
  while ((customAttributes = await customSearchAttributes(connection, namespace)) === null) {
    if (Date.now() > deadline)
      throw new Error(`namespace ${namespace} was registered but never became visible`);
    await delay(500);
  }
  const mistyped = wronglyTypedSearchAttributes(customAttributes, namespace);
  if (mistyped) {
    throw new CommandFailure(
      `namespace "${namespace}" holds job search attributes of another type: ${mistyped.problems.join(', ')}; ${mistyped.fix}`,
    );
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
