// The GraphQL registry API over a real server on loopback, against a real PostgreSQL (and PGlite).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';
import { createScratchDatabase, skipWithoutPostgres, type ScratchDatabase } from '../helpers/postgres.js';
import { defaultQueryLimits } from '../../src/server/query-limits.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const importMutation = `mutation($path: String!) { importBundle(path: $path) { created model { name } version { version } } }`;

const lineageQuery = `{
  models(first: 50) {
    totalCount
    edges { cursor node {
      name
      versions { version aliases parent { version } children { version } files { path sha256 }
        backbone { name pretrainedSource { name citation } heads { name } modelVersions { version } }
        heads { name task reads labels
          backbone { name }
          datasets { role dataset { name license heads { role head { name } } evaluations { metric } } }
          trainingData { name }
          evaluations { metric value split sampleCount dataset { name size splits } head { name } }
        }
      }
    } }
  }
}`;

for (const database of ['postgresql', 'pglite'] as const) {
  describe(`registry API on ${database}`, { skip: database === 'postgresql' ? skipWithoutPostgres : false }, () => {
    let server: TestServer;
    let scratch: ScratchDatabase | undefined;

    before(async () => {
      scratch = database === 'postgresql' ? await createScratchDatabase() : undefined;
      // The lineage query below walks every relation at once, far past the default query cost budget
      // (tests/server/limits.test.ts shows it refused there); these tests are about the registry.
      server = await startTestServer({ databaseUrl: scratch?.url, models: [], queryLimits: { ...defaultQueryLimits, maxCost: 10_000_000 } });
    });
    after(async () => {
      await server.close();
      await scratch?.drop();
    });

    test('server reports itself and its database', async () => {
      const { data } = await server.gql('{ server { version uptimeSeconds database defaultModel } }');
      assert.equal(data.server.database, database);
      assert.equal(data.server.defaultModel, 'default');
    });

    test('mutations need the API key; queries do not', async () => {
      const path = writeFixtureBundle(tempDir(), { name: 'guarded' });
      const anonymous = await server.gql(importMutation, { path });
      assert.equal(anonymous.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      const wrong = await server.gql(importMutation, { path }, { authorization: 'Bearer not-the-key' });
      assert.equal(wrong.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
      const { data } = await server.gql('{ model(name: "guarded") { name } }');
      assert.equal(data.model, null, 'nothing was imported without the key');
      const ok = await server.admin(importMutation, { path });
      assert.deepEqual(ok.data?.importBundle, { created: true, model: { name: 'guarded' }, version: { version: '1.0.0' } });
    });

    test('an imported bundle is browsable with its lineage both ways', async () => {
      await server.admin(importMutation, { path: writeFixtureBundle(tempDir(), { name: 'lineage', version: '1.0.0' }) });
      await server.admin(importMutation, { path: writeFixtureBundle(tempDir(), { name: 'lineage', version: '1.1.0', parent: '1.0.0' }) });
      const { data, errors } = await server.gql(lineageQuery);
      assert.equal(errors, undefined);
      const model = data.models.edges.find((e: any) => e.node.name === 'lineage').node;
      assert.deepEqual(model.versions.map((v: any) => v.version), ['1.1.0', '1.0.0']);
      assert.equal(model.versions[0].parent.version, '1.0.0');
      assert.deepEqual(model.versions[1].children.map((c: any) => c.version), ['1.1.0']);
      const newest = model.versions[0];
      assert.equal(newest.backbone.pretrainedSource.citation, 'Nobody et al. 2026');
      assert.ok(newest.backbone.heads.some((h: any) => h.name === 'entities'), "a backbone lists its heads");
      const sentiment = newest.heads.find((h: any) => h.name === 'sentiment');
      assert.deepEqual(sentiment.labels, ['negative', 'positive']);
      assert.equal(sentiment.backbone.name, 'tiny-encoder');
      assert.deepEqual(sentiment.trainingData.map((d: any) => d.name), ['reviews']);
      assert.equal(sentiment.evaluations[0].dataset.name, 'reviews');
      assert.deepEqual(sentiment.evaluations[0].dataset.splits, { train: 80, test: 20 });
      assert.ok(sentiment.datasets.some((d: any) => d.dataset.heads.some((h: any) => h.head.name === 'sentiment')), 'a dataset lists its heads');
    });

    test('registry reads are batched: the query count does not grow with the number of models (no N+1)', async () => {
      const countFor = async () => {
        server.queries.length = 0;
        const { errors } = await server.gql(lineageQuery);
        assert.equal(errors, undefined);
        return server.queries.length;
      };
      const before = await countFor();
      const added = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8'];
      for (const name of added) await server.admin(importMutation, { path: writeFixtureBundle(tempDir(), { name }) });
      const afterMore = await countFor();
      // N+1 would add at least one query per new model for every relation. DataLoader batches per tick, and a
      // level's loads can straddle two ticks when database replies arrive apart: allow that jitter, no more.
      assert.ok(afterMore < before + added.length / 2, `queries grew from ${before} to ${afterMore} with ${added.length} more models`);
      assert.ok(afterMore <= 30, `${afterMore} queries for one deep registry read`);
    });

    test('models is a Relay connection with task and search filters', async () => {
      for (const name of ['page-a', 'page-b', 'page-c']) await server.admin(importMutation, { path: writeFixtureBundle(tempDir(), { name }) });
      const first = await server.gql('{ models(first: 2, search: "page-") { totalCount edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }');
      assert.equal(first.data.models.totalCount, 3);
      assert.deepEqual(first.data.models.edges.map((e: any) => e.node.name), ['page-a', 'page-b']);
      assert.equal(first.data.models.pageInfo.hasNextPage, true);
      const second = await server.gql('query($after: String) { models(first: 2, search: "PAGE-", after: $after) { edges { node { name } } pageInfo { hasNextPage hasPreviousPage } } }', {
        after: first.data.models.pageInfo.endCursor,
      });
      assert.deepEqual(second.data.models.edges.map((e: any) => e.node.name), ['page-c']);
      assert.deepEqual(second.data.models.pageInfo, { hasNextPage: false, hasPreviousPage: true });
      await server.admin(importMutation, {
        path: writeFixtureBundle(tempDir(), { name: 'page-embed-only', heads: [{ name: 'embedding', task: 'embedding', reads: 'pooled' }], edit: (m) => (m.evaluations = []) }),
      });
      const tokenModels = await server.gql('{ models(first: 100, search: "page", task: TOKEN_CLASSIFICATION) { edges { node { name } } } }');
      assert.deepEqual(tokenModels.data.models.edges.map((e: any) => e.node.name), ['page-a', 'page-b', 'page-c']);
      const bad = await server.gql('{ models(first: 1000) { totalCount } }');
      assert.equal(bad.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
      const badCursor = await server.gql('{ models(after: "garbage") { totalCount } }');
      assert.equal(badCursor.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    });

    test('aliases move between versions; deleting a version removes it and its aliases', async () => {
      await server.admin(importMutation, { path: writeFixtureBundle(tempDir(), { name: 'aliased', version: '1.0.0' }) });
      await server.admin(importMutation, { path: writeFixtureBundle(tempDir(), { name: 'aliased', version: '2.0.0' }) });
      const served = () => server.gql('{ model(name: "aliased") { version { version } aliases { alias version { version } } } }');
      assert.equal((await served()).data.model.version.version, '2.0.0', 'without an alias the newest version is served');
      const set = await server.admin('mutation { setAlias(model: "aliased", alias: "production", version: "1.0.0") { version aliases } }');
      assert.deepEqual(set.data.setAlias, { version: '1.0.0', aliases: ['production'] });
      assert.equal((await served()).data.model.version.version, '1.0.0');
      const unknown = await server.admin('mutation { setAlias(model: "aliased", alias: "production", version: "9.9.9") { version } }');
      assert.equal(unknown.errors?.[0]?.extensions?.code, 'VERSION_NOT_FOUND');
      const noModel = await server.admin('mutation { setAlias(model: "nope", alias: "production", version: "1.0.0") { version } }');
      assert.equal(noModel.errors?.[0]?.extensions?.code, 'MODEL_NOT_FOUND');
      const badAlias = await server.admin('mutation { setAlias(model: "aliased", alias: "Prod Uction", version: "1.0.0") { version } }');
      assert.equal(badAlias.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
      assert.equal((await server.admin('mutation { deleteModelVersion(model: "aliased", version: "1.0.0") }')).data.deleteModelVersion, true);
      const after = (await served()).data.model;
      assert.deepEqual(after.aliases, []);
      assert.equal(after.version.version, '2.0.0');
      assert.equal((await server.admin('mutation { removeAlias(model: "aliased", alias: "production") }')).data.removeAlias, false);
      await server.admin('mutation { deleteModelVersion(model: "aliased", version: "2.0.0") }');
      assert.equal((await served()).data.model, null, 'the model goes with its last version');
    });

    test('bad bundles through the mutation get typed errors naming the problem', async () => {
      const invalid = await server.admin(importMutation, { path: writeFixtureBundle(tempDir(), { name: 'bad', edit: (m) => (m.backbone.vocabSize = 'many') }) });
      assert.equal(invalid.errors?.[0]?.extensions?.code, 'BUNDLE_INVALID');
      assert.match(invalid.errors![0]!.message, /backbone\.vocabSize/);
      assert.ok(invalid.errors![0]!.extensions!.problems.length >= 1);
      const missing = await server.admin(importMutation, { path: '/definitely/not/here' });
      assert.equal(missing.errors?.[0]?.extensions?.code, 'BUNDLE_INVALID');
    });

    test('GraphQL errors carry codes and never a stack trace', async () => {
      const syntax = await server.gql('{ models(');
      assert.equal(syntax.errors?.[0]?.extensions?.code, 'GRAPHQL_PARSE_FAILED');
      const unknownField = await server.gql('{ nope }');
      assert.equal(unknownField.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
      for (const response of [syntax, unknownField]) assert.equal(response.errors?.[0]?.extensions?.stacktrace, undefined);
    });
  });
}
