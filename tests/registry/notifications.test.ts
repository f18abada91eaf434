// LISTEN/NOTIFY on the registry database: PGlite within one process, PostgreSQL across connections, and the
// listening session coming back after PostgreSQL terminated it.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { migrateDatabase, openDatabase } from '../../src/registry/database.js';
import { listenerApplicationName, openNotifications } from '../../src/registry/notifications.js';
import { tempDir } from '../helpers/bundle-fixture.js';
import { createScratchDatabase, skipWithoutPostgres } from '../helpers/postgres.js';

/** Resolves with the next payload handed to the returned handler. */
function nextPayload(timeoutMs = 5_000) {
  let resolve!: (payload: string) => void;
  const received = new Promise<string>((res, reject) => {
    resolve = res;
    setTimeout(() => reject(new Error(`no notification within ${timeoutMs} ms`)), timeoutMs).unref();
  });
  return { received, handler: (payload: string) => resolve(payload) };
}

it('PGlite: a notification reaches this process, also when sent from a Prisma transaction', async (t) => {
  const db = await openDatabase({ dataDir: tempDir() });
  t.after(() => db.close());
  await migrateDatabase(db);
  const notifications = openNotifications(db);
  t.after(() => notifications.close());

  const first = nextPayload();
  const stop = notifications.listen('polyhead_models', first.handler);
  await notifications.notify('polyhead_models', '{"model":"a"}');
  assert.equal(await first.received, '{"model":"a"}');
  stop();

  const second = nextPayload();
  notifications.listen('polyhead_models', second.handler);
  await db.prisma.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_notify('polyhead_models', 'from prisma')`;
  });
  assert.equal(await second.received, 'from prisma');
});

it('PostgreSQL: sent by one process, heard by every listener; a terminated listener comes back and says so', { skip: skipWithoutPostgres }, async (t) => {
  const scratch = await createScratchDatabase();
  const sender = await openDatabase({ url: scratch.url, dataDir: tempDir() });
  const listener = await openDatabase({ url: scratch.url, dataDir: tempDir() });
  const senderSide = openNotifications(sender);
  const listenerSide = openNotifications(listener);
  const admin = new pg.Client({ connectionString: scratch.url });
  // after-hooks run in the order they were added: everything closes before the database is dropped.
  t.after(async () => {
    await Promise.all([senderSide.close(), listenerSide.close(), admin.end()]);
    await Promise.all([sender.close(), listener.close()]);
    await scratch.drop();
  });
  const own = nextPayload();
  senderSide.listen('polyhead_versions', own.handler);
  const other = nextPayload();
  listenerSide.listen('polyhead_versions', other.handler);
  // The listener's LISTEN must be in place before the sender speaks: its own notify waits for it.
  await listenerSide.notify('polyhead_jobs', 'warm-up');
  await senderSide.notify('polyhead_versions', 'v1');
  assert.equal(await own.received, 'v1');
  assert.equal(await other.received, 'v1');

  let reconnected!: () => void;
  const cameBack = new Promise<void>((resolve) => (reconnected = resolve));
  listenerSide.onReconnect(() => reconnected());
  await admin.connect();
  const { rows } = await admin.query<{ killed: boolean }>(
    'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
    [listenerApplicationName],
  );
  assert.deepEqual(rows, [{ killed: true }, { killed: true }], 'both listening sessions terminated');
  await cameBack;
  const afterwards = nextPayload();
  listenerSide.listen('polyhead_versions', afterwards.handler);
  await senderSide.notify('polyhead_versions', 'v2');
  assert.equal(await afterwards.received, 'v2');
});
