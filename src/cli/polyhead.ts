// polyhead <command>: registry work from the shell, against the database directly or a running server.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createProgressBar } from '../training/progress.js';
import { resolve } from 'node:path';
import { readConfig } from '../config.js';
import { PolyheadError } from '../errors.js';
import { ApiKeyService } from '../auth/api-keys.js';
import { migrateDatabase, openDatabase, type RegistryDatabase } from '../registry/database.js';
import { importBundle } from '../registry/bundle-import.js';
import { importHuggingFace } from '../import/huggingface/import-hf.js';
import { evaluateDirectly, printBiasProbe, printEvaluation } from '../evaluation/evaluate-cli.js';

const usage = `usage:
  polyhead import <bundle-folder> [--server URL] [--api-key KEY]
      Registers a model bundle. Without --server it writes to the database of POLYHEAD_DATA_DIR or DATABASE_URL;
      with --server it calls the importBundle mutation of a running server (the folder must be readable there).
  polyhead import-hf <folder> [--name N] [--version V] [--head H] [--license L] [--source <repo id>[@revision]]
                     [--source-language xx --target-language yy] [--server URL] [--api-key KEY]
      Imports a Hugging Face model folder (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx):
      an encoder (sentence-transformers pooling from 1_Pooling), or a *ForSequenceClassification model (head
      "classification", or --head H) or *ForTokenClassification model (head "entities"), or a Marian translation
      model (encoder_model.onnx + decoder_model_merged.onnx; languages from opus-mt-xx-yy). Every problem is listed
      with its file and field; nothing is registered on a refusal.
  polyhead keys create --name NAME --scopes read,write,train,admin
      Creates an API key and prints it once (only a scrypt hash is stored).
  polyhead keys list
  polyhead keys revoke <id>
  polyhead train --model M --head H --task classification|token_classification --labels a,b[,c]
                 --examples examples.jsonl [--server URL] [--api-key KEY] [--no-load]
      Trains a new head on a running server (trainHead), showing progress until it is served.
      JSONL lines: {"text": "...", "label": "a"} or {"text": "...", "entities": [{"start": 0, "end": 5, "label": "PER"}]}
  polyhead fine-tune --model M [--task head=dataset[:weight] ...] [--unlabeled D] [--adapt-dataset D] [--epochs N]
                     [--seed S] [--server URL] [--api-key KEY] [--no-load]
      Fine-tunes the model's backbone on its heads' tasks at once on a running server (fineTuneBackbone), showing
      progress until the new version is served. Without --task, every trained head learns from the dataset it was
      trained on (from the registry); --unlabeled names the text of the distillation term (default
      brown-unlabelled; "" for none); --adapt-dataset names unlabelled text of a target domain to adapt to.
  polyhead evaluate --model M --head H --dataset D [--split S] [--server URL] [--api-key KEY]
      Scores a head on a registry dataset whose examples the registry holds (classification: accuracy, expected
      calibration error, macro F1; token classification: span precision / recall / F1) and records the figures.
      Without --server it loads the model from the registry of POLYHEAD_DATA_DIR or DATABASE_URL itself.
  polyhead bias-probe --model M [--head sentiment] [--server URL] [--api-key KEY]
      The counterfactual gender and ethnicity probe of a sentiment head (dataset "bias-probe-eec-style"):
      mean positive-score gap per dimension with its 95% interval, and the share of pairs whose label flips.`;

async function main(argv: string[]) {
  // fine-tune has options of its own (a repeatable --task); the others share one set.
  if (argv[0] === 'fine-tune' && !argv.includes('--help') && !argv.includes('-h')) return fineTune(argv);
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      server: { type: 'string' },
      'api-key': { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      model: { type: 'string' },
      head: { type: 'string' },
      task: { type: 'string' },
      labels: { type: 'string' },
      examples: { type: 'string' },
      dataset: { type: 'string' },
      split: { type: 'string' },
      'no-load': { type: 'boolean' },
      version: { type: 'string' },
      license: { type: 'string' },
      source: { type: 'string' },
      'source-language': { type: 'string' },
      'target-language': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) return void console.log(usage);
  if (command === 'keys') return keys(rest, values);
  if (command === 'train') return train(values);
  if (command === 'import-hf') return importHf(rest, values);
  if (command === 'evaluate') return evaluate(values);
  if (command === 'bias-probe') return evaluate({ ...values, head: values.head ?? 'sentiment', dataset: 'bias-probe-eec-style' });
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

async function importHf(args: string[], options: Record<string, string | boolean | undefined>) {
  if (args.length !== 1) throw new UsageError('import-hf needs one folder');
  const folder = resolve(args[0]!);
  const given = {
    name: options.name,
    version: options.version,
    head: options.head,
    license: options.license,
    source: options.source,
    sourceLanguage: options['source-language'],
    targetLanguage: options['target-language'],
  } as Record<string, string | undefined>;
  let result: { model: string; version: string; created: boolean };
  if (options.server) {
    const data = await graphql(
      String(options.server),
      'mutation($path: String!, $name: String, $version: String, $head: String, $license: String, $source: String, $sourceLanguage: String, $targetLanguage: String) { importHuggingFace(path: $path, name: $name, version: $version, head: $head, license: $license, source: $source, sourceLanguage: $sourceLanguage, targetLanguage: $targetLanguage) { created model { name } version { version } } }',
      { path: folder, ...given },
      (options['api-key'] as string | undefined) ?? process.env.POLYHEAD_API_KEY,
    );
    const r = data.importHuggingFace;
    result = { model: r.model.name, version: r.version.version, created: r.created };
  } else {
    const { bundleDir } = readConfig();
    const r = await withRegistry((db) => importHuggingFace(db.prisma, folder, { ...given, bundleDir }));
    result = { model: r.modelName, version: r.version, created: r.created };
  }
  console.log(`${result.created ? 'registered' : 'already registered'}: ${result.model} ${result.version}`);
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
  const data = await graphql(server, 'mutation($path: String!) { importBundle(path: $path) { created model { name } version { version } } }', { path: folder }, apiKey);
  const r = data.importBundle;
  return { model: r.model.name as string, version: r.version.version as string, created: r.created as boolean };
}

async function train(options: Record<string, string | boolean | undefined>) {
  for (const name of ['model', 'head', 'task', 'labels', 'examples']) if (!options[name]) throw new UsageError(`train needs --${name}`);
  const server = String(options.server ?? 'http://localhost:4000/graphql');
  const examples = readFileSync(String(options.examples), 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line, i) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new UsageError(`${options.examples}:${i + 1}: not JSON`);
      }
    });
  const call = (query: string, variables: object) => graphql(server, query, variables, (options['api-key'] as string | undefined) ?? process.env.POLYHEAD_API_KEY);
  const started = await call(
    'mutation($m: String!, $h: String!, $t: TaskKind!, $l: [String!]!, $e: [TrainingExampleInput!], $load: Boolean!) { trainHead(model: $m, head: $h, task: $t, labels: $l, examples: $e, load: $load) { id } }',
    { m: options.model, h: options.head, t: String(options.task).toUpperCase(), l: String(options.labels).split(','), e: examples, load: !options['no-load'] },
  );
  const id = started.trainHead.id as string;
  const bar = createProgressBar(`training ${options.head}`);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { trainingJob: job } = await call('query($id: ID!) { trainingJob(id: $id) { status phase progress epoch loss error version metrics { metric value split samples } } }', { id });
    bar.update(Math.round(job.progress * 100), 100, `${job.phase}${job.epoch ? ` epoch ${job.epoch}` : ''}${job.loss ? ` loss ${job.loss.toFixed(3)}` : ''}`);
    if (job.status === 'FAILED') throw new Error(`training failed: ${job.error}`);
    if (job.status === 'SUCCEEDED') {
      bar.finish('done');
      for (const m of job.metrics) console.log(`${m.metric} on ${m.samples} held-out ${m.split} examples: ${m.value.toFixed(4)}`);
      console.log(`registered ${options.model} ${job.version}${options['no-load'] ? '' : ' and now serving it'}`);
      return;
    }
  }
}

async function fineTune(argv: string[]) {
  // Its own options: --task repeats here (head=dataset), where train's --task is a task kind.
  const { values: options } = parseArgs({
    args: argv.slice(1),
    options: {
      model: { type: 'string' },
      task: { type: 'string', multiple: true },
      unlabeled: { type: 'string' },
      'adapt-dataset': { type: 'string' },
      epochs: { type: 'string' },
      seed: { type: 'string' },
      server: { type: 'string' },
      'api-key': { type: 'string' },
      'no-load': { type: 'boolean' },
    },
  });
  if (!options.model) throw new UsageError('fine-tune needs --model');
  const server = String(options.server ?? 'http://localhost:4000/graphql');
  const call = (query: string, variables: object) => graphql(server, query, variables, (options['api-key'] as string | undefined) ?? process.env.POLYHEAD_API_KEY);
  let tasks = (options.task ?? []).map((spec) => {
    const match = /^([^=]+)=([^:]+)(?::([0-9.]+))?$/.exec(spec);
    if (!match) throw new UsageError(`--task ${spec}: head=dataset or head=dataset:weight`);
    return { head: match[1]!, dataset: match[2]!, ...(match[3] ? { weight: Number(match[3]) } : {}) };
  });
  if (!tasks.length) {
    // Each trained head learns from the dataset it was trained on, as the registry records it.
    const { model } = await call('query($m: String!) { model(name: $m) { version { version heads { name file datasets { role dataset { name } } } } } }', { m: options.model });
    if (!model?.version) throw new Error(`no model ${options.model} in the registry`);
    tasks = model.version.heads
      .filter((h: { file: string | null }) => h.file)
      .map((h: { name: string; datasets: Array<{ role: string; dataset: { name: string } }> }) => ({ head: h.name, dataset: h.datasets.find((d) => d.role === 'TRAINING')?.dataset.name }))
      .filter((t: { dataset?: string }) => t.dataset);
    console.error(`tasks: ${tasks.map((t) => `${t.head} on ${t.dataset}`).join(', ')}`);
  }
  const started = await call(
    'mutation($m: String!, $t: [FineTuneTaskInput!]!, $u: String, $a: String, $e: Int, $s: Int, $load: Boolean!) { fineTuneBackbone(model: $m, tasks: $t, unlabeledDataset: $u, adaptationDataset: $a, epochs: $e, seed: $s, load: $load) { id } }',
    {
      m: options.model,
      t: tasks,
      u: (options.unlabeled as string | undefined) ?? null,
      a: (options['adapt-dataset'] as string | undefined) ?? null,
      e: options.epochs === undefined ? null : Number(options.epochs),
      s: options.seed === undefined ? null : Number(options.seed),
      load: !options['no-load'],
    },
  );
  const id = started.fineTuneBackbone.id as string;
  const bar = createProgressBar('fine-tuning');
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const { trainingJob: job } = await call('query($id: ID!) { trainingJob(id: $id) { status phase progress epoch loss validationMetric error version metrics { metric value split samples } } }', { id });
    bar.update(Math.round(job.progress * 100), 100, `${job.phase}${job.epoch ? ` epoch ${job.epoch}` : ''}${job.loss ? ` loss ${job.loss.toFixed(3)}` : ''}${job.validationMetric ? ` best ${job.validationMetric.toFixed(3)}` : ''}`);
    if (job.status === 'FAILED') throw new Error(`fine-tuning failed: ${job.error}`);
    if (job.status === 'SUCCEEDED') {
      bar.finish('done');
      for (const m of job.metrics) console.log(`${m.split}: ${m.metric} ${m.value.toFixed(4)} on ${m.samples} examples`);
      const { model } = await call('query($m: String!, $v: String!) { model(name: $m) { version(ref: $v) { backbone { name version parent { name version } } } } }', { m: options.model, v: job.version });
      const b = model.version.backbone;
      console.log(`registered ${options.model} ${job.version} on backbone ${b.name} ${b.version} (fine-tuned from ${b.parent.name} ${b.parent.version})${options['no-load'] ? '' : '; now serving it'}`);
      return;
    }
  }
}

async function evaluate(options: Record<string, string | boolean | undefined>) {
  for (const name of ['model', 'head', 'dataset']) if (!options[name]) throw new UsageError(`${options.dataset === 'bias-probe-eec-style' ? 'bias-probe' : 'evaluate'} needs --${name}`);
  const request = { model: String(options.model), head: String(options.head), dataset: String(options.dataset), split: (options.split as string | undefined) ?? null };
  if (!options.server) {
    const config = readConfig();
    const result = await withRegistry((db) => evaluateDirectly(db, config, request));
    return result.biasProbe ? printBiasProbe(result) : printEvaluation(result);
  }
  const data = await graphql(
    String(options.server),
    'mutation($m: String!, $h: String!, $d: String!, $s: String) { evaluateHead(model: $m, head: $h, dataset: $d, split: $s) { model version head dataset split samples evaluations { metric value split sampleCount } } }',
    { m: request.model, h: request.head, d: request.dataset, s: request.split },
    (options['api-key'] as string | undefined) ?? process.env.POLYHEAD_API_KEY,
  );
  printEvaluation(data.evaluateHead);
}

async function graphql(server: string, query: string, variables: object, apiKey?: string) {
  const response = await fetch(server, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: { code?: string; problems?: string[] } }> };
  if (body.errors?.length) {
    throw new Error(body.errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}${(e.extensions?.problems ?? []).map((p) => `\n  - ${p}`).join('')}`).join('\n'));
  }
  return body.data;
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
