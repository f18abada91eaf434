// Events that subscriptions stream, fanned out within this process: each subscriber gets its own bounded
// PushStream. The class has the publish/subscribe shape of type-graphql's PubSub, so the schema's topic-based
// subscriptions read from it directly (type-graphql's own default, Yoga's createPubSub, buffers without bound
// and throws from publish once a slow subscriber has 1,024 events pending).
import { PushStream } from './push-stream.js';

export const modelChangesTopic = 'MODEL_CHANGES';

export type ModelChangeKind = 'LOADED' | 'UNLOADED' | 'VERSION_REGISTERED';

/** A model loaded, unloaded, or a new version of it registered. */
export interface ModelChangeEvent {
  kind: ModelChangeKind;
  model: string;
  /** The version loaded or registered; for an unload, the version that was serving when known. */
  version: string | null;
  at: Date;
}

export class LiveEvents {
  private readonly subscribers = new Map<string, Set<PushStream<unknown>>>();

  publish(topic: string, ...payloads: unknown[]): void {
    for (const stream of this.subscribers.get(topic) ?? []) for (const payload of payloads) stream.push(payload);
  }

  subscribe(topic: string): PushStream<unknown> {
    let set = this.subscribers.get(topic);
    if (!set) this.subscribers.set(topic, (set = new Set()));
    const stream = new PushStream<unknown>();
    set.add(stream);
    return stream.onClose(() => set.delete(stream));
  }

  /** Subscribers of a topic now (for metrics and tests). */
  count(topic: string): number {
    return this.subscribers.get(topic)?.size ?? 0;
  }

  publishModelChange(event: ModelChangeEvent): void {
    this.publish(modelChangesTopic, event);
  }
}

/** A load or unload as ModelManager reports it, as an event. */
export function modelChangeEvent(change: { op: 'load'; name: string; version: string } | { op: 'unload'; name: string }, at = new Date()): ModelChangeEvent {
  return change.op === 'load'
    ? { kind: 'LOADED', model: change.name, version: change.version, at }
    : { kind: 'UNLOADED', model: change.name, version: null, at };
}
