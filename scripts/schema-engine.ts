// Prisma's schema engine compiled to WebAssembly (@prisma/schema-engine-wasm, a devDependency), driven
// through a driver adapter: it diffs schema.prisma against a live database without the native engine
// that the Prisma CLI would download. Used by the migration generator and the drift test, never at run time.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';

export const schemaPath = 'prisma/schema.prisma';

interface SchemaEngine {
  diff(params: unknown): Promise<{ exitCode: number; stdout: string | null }>;
}

let engineModule: Promise<{ SchemaEngine: { new: (o: unknown, cb: unknown, a: unknown) => Promise<SchemaEngine> } }> | undefined;

function loadEngineModule() {
  // The package's entry imports the .wasm as an ES module, which node 20 cannot; instantiate it by hand.
  engineModule ??= (async () => {
    const require = createRequire(import.meta.url);
    const dir = require.resolve('@prisma/schema-engine-wasm').replace(/schema_engine\.js$/, '');
    const bindings = await import(`${dir}schema_engine_bg.js`);
    // node has WebAssembly; the ES2023 lib typings do not declare it.
    const wasm = (globalThis as unknown as { WebAssembly: { instantiate(bytes: Buffer, imports: object): Promise<{ instance: { exports: Record<string, unknown> } }> } }).WebAssembly;
    const { instance } = await wasm.instantiate(readFileSync(`${dir}schema_engine_bg.wasm`), {
      './schema_engine_bg.js': bindings,
    });
    bindings.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return bindings;
  })();
  return engineModule;
}

const noFilters = { externalTables: [], externalEnums: [] };

function schemaFiles() {
  return [{ path: 'schema.prisma', content: readFileSync(schemaPath, 'utf8') }];
}

async function connect(adapter: SqlMigrationAwareDriverAdapterFactory): Promise<SchemaEngine> {
  const { SchemaEngine } = await loadEngineModule();
  const files = schemaFiles();
  return SchemaEngine.new({ datamodels: files.map((f) => [f.path, f.content]) }, () => {}, bindMigrationAwareSqlAdapterFactory(adapter));
}

/** SQL that turns the database behind `adapter` into schema.prisma; '' when they already match. */
export async function diffDatabaseToSchema(adapter: SqlMigrationAwareDriverAdapterFactory): Promise<string> {
  const engine = await connect(adapter);
  const files = schemaFiles();
  const result = await engine.diff({
    from: { tag: 'schemaDatasource', files, configDir: '.' },
    to: { tag: 'schemaDatamodel', files },
    script: true,
    exitCode: true,
    filters: noFilters,
  });
  return result.exitCode === 2 ? (result.stdout ?? '') : '';
}

/**
 * A PostgreSQL adapter the schema engine can introspect with. The catalog has columns of the internal types
 * "char" (oid 18) and name (oid 19), which the pg adapter cannot describe (prisma/prisma#27403); they are text.
 */
export function postgresAdapterForSchemaEngine(url: string): { adapter: PrismaPg; close: () => Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult>;
  (pool as unknown as { query: unknown }).query = async (...args: unknown[]) => {
    const result = await query(...args);
    for (const field of result.fields ?? []) if (field.dataTypeID === 18 || field.dataTypeID === 19) field.dataTypeID = 25;
    return result;
  };
  return { adapter: new PrismaPg(pool), close: () => pool.end() };
}
