// The polling baseline: a bare Fastify hello-world answering a job-sized JSON body, as its own
// process like the API. `node --import ./src/typescript-hooks.ts scripts/bench/hello-server.ts <port>`.
import Fastify from 'fastify';

const port = Number(process.argv[2]);
const app = Fastify({ logger: false });
app.get('/hello/:id', async (request) => ({
  id: (request.params as { id: string }).id,
  status: 'running',
  progress: 0,
  phase: null,
}));
await app.listen({ host: '127.0.0.1', port });
console.log('hello server listening');
const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
