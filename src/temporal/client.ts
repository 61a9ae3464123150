import { Client, Connection } from '@temporalio/client';

/**
 * A client whose connection is made on first use, so the API boots (and answers /readyz with
 * 503) while Temporal is still unreachable instead of refusing to start.
 */
export function createTemporalClient(address: string, namespace: string): Client {
  return new Client({ connection: Connection.lazy({ address }), namespace });
}
