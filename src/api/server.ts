import type { FastifyInstance } from 'fastify';
import { StartupError, urlHost, type Config } from '../config.js';
import { createMediaStorage } from '../storage/index.js';
import { buildApp, type AppDependencies } from './app.js';

export interface ApiServer {
  app: FastifyInstance;
  url: string;
  /** Stops accepting connections and waits for in-flight requests to finish. */
  close(): Promise<void>;
}

export async function startApiServer(
  config: Config,
  deps: Omit<AppDependencies, 'config' | 'mediaStorage'>,
): Promise<ApiServer> {
  const app = await buildApp({
    ...deps,
    config,
    mediaStorage: createMediaStorage(config, deps.jwtSecret),
  });
  await app
    .listen({ host: config.API_HOST, port: config.API_PORT })
    .catch(async (error: unknown) => {
      await app.close();
      throw new StartupError(
        'API_HOST / API_PORT',
        `cannot listen on ${config.API_HOST}:${config.API_PORT}`,
        error,
      );
    });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.API_PORT;
  return { app, url: `http://${urlHost(config.API_HOST)}:${port}`, close: () => app.close() };
}
