/**
 * Cache memory accounting. A request that joins the running batch reserves, up front, one slot per beam and
 * its worst case in tokens: its source (the encoder output its cross-attention reads, shared by its beams)
 * plus beams x its length limit (each beam's self-attention cache). The reservation is returned when the
 * request leaves. Reserving the worst case means a running request never has to be paused or evicted for
 * memory, and the backend's caches never hold more than `tokenBudget` tokens in all, however many requests
 * wait: waiting requests hold nothing but their source ids.
 */
export class SlotPool {
  /** Free slots, lowest last so that pop() reuses low slots first (a backend's arena stays compact). */
  private readonly free: number[];
  private reserved = 0;

  constructor(
    readonly slots: number,
    readonly tokenBudget: number,
  ) {
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  }

  get reservedTokens(): number {
    return this.reserved;
  }

  get busySlots(): number {
    return this.slots - this.free.length;
  }

  fits(slots: number, tokens: number): boolean {
    return slots <= this.free.length && this.reserved + tokens <= this.tokenBudget;
  }

  take(slots: number, tokens: number): number[] {
    if (!this.fits(slots, tokens)) throw new Error(`SlotPool: ${slots} slots and ${tokens} tokens do not fit`);
    this.reserved += tokens;
    return this.free.splice(this.free.length - slots, slots).reverse();
  }

  give(slots: readonly number[], tokens: number): void {
    this.reserved -= tokens;
    for (let i = slots.length - 1; i >= 0; i--) this.free.push(slots[i]!);
  }
}

export interface SlotPlan {
  /** The slot of each new live hypothesis. */
  slots: number[];
  /** Cache copies to make before the next step, [from, to]; no `to` is ever a `from`, so any order works. */
  forks: Array<[number, number]>;
  /** Slots whose hypothesis died: their caches can be emptied (the request keeps them for later forks). */
  released: number[];
}

/**
 * Where each surviving beam's cache lives. The first child of a hypothesis inherits its slot as is (no
 * copy); further children take slots of hypotheses that died, or the request's unused slots, and receive a
 * copy of their parent's cache. Only dead or unused slots are overwritten, so every copy reads an intact
 * parent.
 *
 * @param owned the request's reserved slots
 * @param live the slot of each current hypothesis
 * @param parents for each new hypothesis, the index in `live` of the hypothesis it extends
 */
export function planBeamSlots(owned: readonly number[], live: readonly number[], parents: readonly number[]): SlotPlan {
  const slots = new Array<number>(parents.length);
  const inherited = new Set<number>();
  parents.forEach((parent, child) => {
    const slot = live[parent]!;
    if (inherited.has(slot)) return;
    inherited.add(slot);
    slots[child] = slot;
  });
  const spare = owned.filter((slot) => !inherited.has(slot));
  const forks: Array<[number, number]> = [];
  parents.forEach((parent, child) => {
    if (slots[child] !== undefined) return;
    const to = spare.shift();
    if (to === undefined) throw new Error('planBeamSlots: more hypotheses than reserved slots');
    slots[child] = to;
    forks.push([live[parent]!, to]);
  });
  const released = live.filter((slot) => spare.includes(slot));
  return { slots, forks, released };
}
