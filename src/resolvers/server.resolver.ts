import { Ctx, Query, Resolver } from 'type-graphql';
import { ServerInfo } from '../schema/server.type.js';
import type { RequestContext } from './context.js';

@Resolver()
export class ServerResolver {
  @Query(() => ServerInfo, { description: 'This server: version, uptime, database, loaded models.' })
  server(@Ctx() ctx: RequestContext): ServerInfo {
    const { server } = ctx;
    return {
      version: server.version,
      pid: process.pid,
      uptimeSeconds: (Date.now() - server.startedAt) / 1000,
      database: server.databaseKind,
      defaultModel: server.defaultModel,
      loadedModels: server.loadedModels(),
      device: server.device(),
      queueDepth: server.queueDepth(),
      batchesRun: server.totals().batches,
      meanBatchSize: server.totals().batches ? server.totals().texts / server.totals().batches : 0,
    };
  }
}
