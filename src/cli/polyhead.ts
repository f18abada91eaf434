// polyhead <command>: registry work from the shell, against the database directly or a running server.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { readConfig } from '../config.js';
import { PolyheadError } from '../errors.js';
import { ApiKeyService } from '../auth/api-keys.js';
import { migrateDatabase, openDatabase, type RegistryDatabase } from '../registry/database.js';
import { importBundle } from '../registry/bundle-import.js';

const usage = `usage:
  polyhead import <bundle-folder> [--server URL] [--api-key KEY]
      Registers a model bundle. Without --server it writes to the database of POLYHEAD_DATA_DIR or DATABASE_URL;
      with --server it calls the importBundle mutation of a running server (the folder must be readable there).
  polyhead keys create --name NAME --scopes read,write,train,admin
      Creates an API key and prints it once (only a scrypt hash is stored).
  polyhead keys list
  polyhead keys revoke <id>`;

async function main(argv: string[]) {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      'api-key': { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) return void console.log(usage);
  if (command === 'keys') return keys(rest, values);
  if (command !== 'import' || rest.length !== 1) throw new UsageError(`unknown command or arguments: ${argv.join(' ')}`);
  const folder = resolve(rest[0]!);
  const result = values.server
    ? await importOverGraphQL(values.server, folder, values['api-key'] ?? process.env.POLYHEAD_API_KEY)
    : await importDirectly(folder);
  console.log(`${result.created ? 'registered' : 'already registered'}: ${result.model} ${result.version}`);
}

async function withRegistry<T>(work: (db: RegistryDatabase) => Promise<T>): Promise<T> {
  const config = readConfig();
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrateDatabase(db);
    return await work(db);
  } finally {
    await db.close();
  }
}

async function importDirectly(folder: string) {
  const result = await withRegistry((db) => importBundle(db.prisma, folder));
  return { model: result.modelName, version: result.version, created: result.created };
}

async function keys(args: string[], options: { name?: string; scopes?: string }) {
  const [action, id] = args;
  await withRegistry(async (db) => {
    const service = new ApiKeyService(db.prisma);
    if (action === 'create') {
      if (!options.name || !options.scopes) throw new UsageError('keys create needs --name and --scopes');
      const created = await service.create(options.name, options.scopes.split(',').map((s) => s.trim()));
      console.log(`created key ${created.id} "${created.name}" with scopes ${created.scopes.join(',')}:\n${created.key}\n(shown once: store it now)`);
    } else if (action === 'list') {
      for (const key of await service.list()) {
        console.log(`${key.id}\t${key.name}\tph_${key.prefix}_…\t${key.scopes.join(',')}\t${key.revokedAt ? 'revoked' : 'active'}`);
      }
    } else if (action === 'revoke' && id && /^\d+$/.test(id)) {
      console.log((await service.revoke(Number(id))) ? `revoked key ${id}` : `no active key ${id}`);
    } else throw new UsageError(`unknown keys command: ${args.join(' ')}`);
  });
}

async function importOverGraphQL(server: string, folder: string, apiKey?: string) {
  const response = await fetch(server, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify({
      query: 'mutation($path: String!) { importBundle(path: $path) { created model { name } version { version } } }',
      variables: { path: folder },
    }),
  });
  const body = (await response.json()) as { data?: { importBundle: { created: boolean; model: { name: string }; version: { version: string } } }; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (body.errors?.length) throw new Error(body.errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('\n'));
  const r = body.data!.importBundle;
  return { model: r.model.name, version: r.version.version, created: r.created };
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`${error.message}\n${usage}`);
  else if (error instanceof PolyheadError) {
    console.error(`${error.code}: ${error.message}`);
    for (const problem of (error.details.problems as string[] | undefined) ?? []) console.error(`  - ${problem}`);
  } else console.error((error as Error).message);
  process.exit(1);
});
