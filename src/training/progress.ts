// Progress reporting: the events every training step emits (a GraphQL job stores the latest), and a small
// command-line progress bar on stderr that renders them.

export type TrainingPhase = 'features' | 'training' | 'evaluation' | 'export' | 'teacher' | 'fine-tune';

export interface TrainingProgress {
  phase: TrainingPhase;
  /** Work done and total in this phase (texts for features, batches for training). */
  done: number;
  total: number;
  /** Training only: the current epoch (1-based) and the maximum. */
  epoch?: number;
  epochs?: number;
  /** Training only: mean training loss of the epoch so far. */
  loss?: number;
  /** After an epoch: the validation figure that early stopping watches, and the best so far. */
  validationMetric?: number;
  bestValidationMetric?: number;
  message?: string;
}

export type ProgressListener = (event: TrainingProgress) => void;

export interface ProgressBar {
  update(done: number, total: number, suffix?: string): void;
  /** Ends the bar's line (prints a final state). */
  finish(suffix?: string): void;
}

/**
 * A one-line progress bar on stderr: `label [#####.....]  45%  120/268  0:07 elapsed  eta 0:09  suffix`.
 * Redraws at most 10 times a second on a TTY; elsewhere (CI logs) prints a line per 25%.
 */
export function createProgressBar(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  const started = Date.now();
  let lastDraw = 0;
  let lastQuarter = -1;
  const width = 24;
  const tty = Boolean(stream.isTTY);
  const format = (seconds: number) => `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;
  const render = (done: number, total: number, suffix: string) => {
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const filled = Math.round(fraction * width);
    const elapsed = (Date.now() - started) / 1000;
    const eta = fraction > 0 ? (elapsed / fraction) * (1 - fraction) : NaN;
    return (
      `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}%  ${done}/${total}  ` +
      `${format(elapsed)} elapsed${Number.isFinite(eta) && fraction < 1 ? `  eta ${format(eta)}` : ''}${suffix ? `  ${suffix}` : ''}`
    );
  };
  return {
    update(done, total, suffix = '') {
      const now = Date.now();
      if (tty) {
        if (now - lastDraw < 100 && done < total) return;
        lastDraw = now;
        stream.write(`\r${render(done, total, suffix)}\x1b[K`);
      } else {
        const quarter = total > 0 ? Math.floor((done / total) * 4) : 0;
        if (quarter === lastQuarter) return;
        lastQuarter = quarter;
        stream.write(`${render(done, total, suffix)}\n`);
      }
    },
    finish(suffix = '') {
      const line = `${label} done in ${format((Date.now() - started) / 1000)}${suffix ? `  ${suffix}` : ''}`;
      stream.write(tty ? `\r${line}\x1b[K\n` : `${line}\n`);
    },
  };
}

/** A ProgressListener that drives command-line bars, one per phase. */
export function progressBarListener(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressListener & { close(): void } {
  let bar: ProgressBar | undefined;
  let phase: TrainingPhase | undefined;
  const listener = (event: TrainingProgress) => {
    if (event.phase !== phase) {
      bar?.finish();
      phase = event.phase;
      bar = createProgressBar(`${label} ${event.phase}`.padEnd(Math.max(label.length + 12, 24)), stream);
    }
    const parts: string[] = [];
    if (event.epoch !== undefined) parts.push(`epoch ${event.epoch}/${event.epochs}`);
    if (event.loss !== undefined) parts.push(`loss ${event.loss.toFixed(4)}`);
    if (event.validationMetric !== undefined) parts.push(`val ${event.validationMetric.toFixed(4)}`);
    if (event.bestValidationMetric !== undefined) parts.push(`best ${event.bestValidationMetric.toFixed(4)}`);
    if (event.message) parts.push(event.message);
    bar!.update(event.done, event.total, parts.join('  '));
  };
  return Object.assign(listener, {
    close() {
      bar?.finish();
      bar = undefined;
      phase = undefined;
    },
  });
}
