import cliProgress from 'cli-progress';
import { formatBytes } from './errors.ts';

export interface Bar {
  /** Moves the bar to `value` (and to a new `total` when given). */
  update(value: number, total?: number): void;
  increment(by: number): void;
  stop(): void;
  /** Whether a bar is drawn (stderr is a terminal); when not, commands print plain lines instead. */
  readonly active: boolean;
}

/**
 * A progress bar on stderr (cli-progress), drawn only when stderr is a terminal: in a log file or
 * a pipe, the commands' own plain lines say what happens.
 */
export function progressBar(
  kind: 'bytes' | 'count',
  label: string,
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Bar {
  if (!stream.isTTY) return { update() {}, increment() {}, stop() {}, active: false };
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        kind === 'bytes'
          ? `${label} {bar} {percentage}% | {done} of {all} | {speed} | ETA {eta_formatted}`
          : `${label} {bar} {value}/{total}`,
      hideCursor: true,
      barsize: 30,
      etaBuffer: 50,
      fps: 5,
      formatValue: (v, _o, type) =>
        kind === 'bytes' && (type === 'value' || type === 'total') ? formatBytes(v) : String(v),
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let value = 0;
  let all = total;
  const payload = () => ({
    done: kind === 'bytes' ? formatBytes(value) : String(value),
    all: kind === 'bytes' ? formatBytes(all) : String(all),
    speed: `${formatBytes(Math.round(value / Math.max(0.001, (Date.now() - started) / 1000)))}/s`,
  });
  bar.start(total, 0, payload());
  return {
    update(v, t) {
      value = v;
      if (t !== undefined) {
        all = t;
        bar.setTotal(t);
      }
      bar.update(v, payload());
    },
    increment(by) {
      value += by;
      bar.update(value, payload());
    },
    stop() {
      bar.stop();
    },
    active: true,
  };
}
