/**
 * npm run bench:blobs
 *
 * What keeping bundle files in the registry costs: the two built-in default bundles (1.2.0 and 1.3.0, built in
 * .cache/bundles as the tests build them) are registered into a fresh embedded database and, when
 * POLYHEAD_TEST_DATABASE_URL is set, a fresh PostgreSQL database, as a first start does; then again, as every
 * later start does; then both versions are fetched into an empty cache, as another replica does, and checked
 * again. Prints wall and this process's CPU milliseconds for each step.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDefaultBundle, ensureFineTunedDefaultBundle } from '../src/bundle/default-bundle.js';
import { importBundle } from '../src/registry/bundle-import.js';
import { migrateDatabase, openDatabase } from '../src/registry/database.js';
import { LocalBundles } from '../src/serving/local-bundle.js';
import { createScratchDatabase, postgresUrl } from '../tests/helpers/postgres.js';
import { sharedBundleDir } from '../tests/helpers/server.js';

const frozen = await ensureDefaultBundle(sharedBundleDir);
const bundles = [frozen, (await ensureFineTunedDefaultBundle(sharedBundleDir, frozen))!];

async function timed(work: () => Promise<unknown>): Promise<string> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await work();
  const used = process.cpuUsage(cpu);
  return `${Math.round(performance.now() - started)} ms (cpu ${Math.round((used.user + used.system) / 1000)} ms)`;
}

for (const kind of postgresUrl ? (['pglite', 'postgresql'] as const) : (['pglite'] as const)) {
  const scratch = kind === 'postgresql' ? await createScratchDatabase() : undefined;
  const db = await openDatabase({ url: scratch?.url, dataDir: mkdtempSync(join(tmpdir(), 'polyhead-bench-')) });
  try {
    await migrateDatabase(db);
    const first = await timed(async () => {
      for (const dir of bundles) await importBundle(db.prisma, dir);
    });
    const again = await timed(async () => {
      for (const dir of bundles) await importBundle(db.prisma, dir);
    });
    const stored = await db.prisma.blob.aggregate({ _count: true, _sum: { sizeBytes: true } });
    // Another replica: the registered folders are not on its disk.
    const replica = new LocalBundles(db.prisma, mkdtempSync(join(tmpdir(), 'polyhead-bench-cache-')));
    const versions = await db.prisma.modelVersion.findMany();
    const elsewhere = async () => {
      for (const version of versions) await replica.folderOf({ ...(await replica.filesOf(version)), bundlePath: join(tmpdir(), 'not-on-this-host') });
    };
    const fetch = await timed(elsewhere);
    const check = await timed(elsewhere);
    console.log(`${kind}: ${stored._count} blobs, ${(Number(stored._sum.sizeBytes) / 1e6).toFixed(1)} MB`);
    console.log(`  first registration (stores the blobs) ${first}; again (stores nothing) ${again}`);
    console.log(`  another replica fetches both versions into an empty cache ${fetch}; checks its cache on a later load ${check}`);
  } finally {
    await db.close();
    await scratch?.drop();
  }
}
