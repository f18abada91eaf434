// Prometheus metrics (prom-client), one `polyhead_` prefix: the engine's batches and queues, GraphQL
// requests and errors by code. The engine reports through its observer; nothing here is on its hot path
// beyond a few counter increments per batch.
import client from 'prom-client';
import type { Engine } from '../engine/engine.js';
import type { ServingModelObserver } from '../engine/serving-model.js';

export class PolyheadMetrics {
  readonly registry = new client.Registry();
  /** Totals for the `server` query. */
  readonly totals = { batches: 0, texts: 0 };
  private engine?: Engine;

  private readonly batches = new client.Counter({ name: 'polyhead_batches_total', help: 'Backbone batches run', labelNames: ['model', 'outcome'], registers: [this.registry] });
  private readonly batchSize = new client.Histogram({
    name: 'polyhead_batch_size',
    help: 'Texts per backbone batch',
    labelNames: ['model'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });
  private readonly batchTokens = new client.Histogram({
    name: 'polyhead_batch_padded_tokens',
    help: 'Padded tokens per batch (longest sequence x texts)',
    labelNames: ['model'],
    buckets: [16, 64, 256, 1024, 4096, 16384, 65536],
    registers: [this.registry],
  });
  private readonly padding = new client.Histogram({
    name: 'polyhead_batch_padding_ratio',
    help: 'Share of padded tokens that were padding',
    labelNames: ['model'],
    buckets: [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1],
    registers: [this.registry],
  });
  private readonly queueWait = new client.Histogram({
    name: 'polyhead_queue_wait_seconds',
    help: 'Time a text waited in the queue before its batch started',
    labelNames: ['model'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly inference = new client.Histogram({
    name: 'polyhead_inference_seconds',
    help: 'Time to run one batch (backbone and heads)',
    labelNames: ['model'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  private readonly headSeconds = new client.Histogram({
    name: 'polyhead_head_seconds',
    help: 'Time to run one head on the rows of a batch that asked for it',
    labelNames: ['model', 'head'],
    buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  private readonly headRows = new client.Counter({ name: 'polyhead_head_texts_total', help: 'Texts each head ran on', labelNames: ['model', 'head'], registers: [this.registry] });
  readonly requests = new client.Counter({ name: 'polyhead_graphql_requests_total', help: 'GraphQL requests', labelNames: ['operation'], registers: [this.registry] });
  readonly refusedBodies = new client.Counter({
    name: 'polyhead_refused_bodies_total',
    help: 'Request bodies refused before GraphQL (413, 415), by how their connection ended: complete (the client sent it all), client-closed, byte-limit or time-limit (POLYHEAD_LINGER_BYTES, POLYHEAD_LINGER_MS)',
    labelNames: ['status', 'outcome'],
    registers: [this.registry],
  });
  readonly errors = new client.Counter({ name: 'polyhead_graphql_errors_total', help: 'GraphQL errors by extensions.code', labelNames: ['code'], registers: [this.registry] });

  constructor(info: { version: string; provider: () => string; device: () => string }) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'polyhead_process_' });
    const engine = () => this.engine;
    new client.Gauge({
      name: 'polyhead_queue_texts',
      help: 'Texts waiting in the queue',
      labelNames: ['model'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const depth of engine()?.depth() ?? []) this.set({ model: depth.model }, depth.entries);
      },
    });
    new client.Gauge({
      name: 'polyhead_queue_tokens',
      help: 'Tokens waiting in the queue',
      labelNames: ['model'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const depth of engine()?.depth() ?? []) this.set({ model: depth.model }, depth.tokens);
      },
    });
    new client.Gauge({
      name: 'polyhead_info',
      help: 'Server version and where the backbone runs',
      labelNames: ['version', 'provider', 'device'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.set({ version: info.version, provider: info.provider(), device: info.device() }, 1);
      },
    });
  }

  attach(engine: Engine): void {
    this.engine = engine;
  }

  readonly observer: ServingModelObserver = {
    onHeads: (model, heads) => {
      for (const head of heads) {
        this.headSeconds.observe({ model, head: head.head }, head.ms / 1000);
        this.headRows.inc({ model, head: head.head }, head.rows);
      }
    },
    onBatch: (model, stats) => {
      this.batches.inc({ model, outcome: stats.error ? 'failed' : 'ok' });
      this.totals.batches++;
      this.totals.texts += stats.size;
      this.batchSize.observe({ model }, stats.size);
      this.batchTokens.observe({ model }, stats.paddedTokens);
      this.padding.observe({ model }, stats.paddedTokens ? 1 - stats.realTokens / stats.paddedTokens : 0);
      this.inference.observe({ model }, stats.runMs / 1000);
      for (const wait of stats.queueWaitMs) this.queueWait.observe({ model }, wait / 1000);
    },
  };
}
