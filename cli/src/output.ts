/** Human output (aligned tables, relative times, a spinner on stderr) and `--json` output. */
import type { Machine } from '../../sdk/src/index.js';

/** "3 min ago", "in 2 h". */
export function relative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86_400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86_400)} d`;
  return s <= 0 ? `${text} ago` : `in ${text}`;
}

/** Aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

/** The columns of a machine row. */
export const MACHINE_HEADERS = ['ID', 'STATUS', 'TEMPLATE', 'SIZE', 'CREATED', 'TIMEOUT'];

/** One machine as a table row. */
export const machineRow = (m: Machine, now = Date.now()): string[] => [
  m.id,
  m.status,
  m.template,
  `${m.config.vcpus} vCPU ${m.config.memory_mb} MiB`,
  relative(m.created_at, now),
  m.status === 'destroyed' ? '-' : relative(m.timeout_at ?? null, now),
];

/** Machines as a table. */
export const machineTable = (ms: Machine[]): string => table(MACHINE_HEADERS, ms.map((m) => machineRow(m)));

/** Print JSON (scripts) or the human form. */
export function out(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : human()}\n`);
}

/** A running spinner: `log` prints a line above it. */
export interface Progress {
  log(line: string): void;
  label(text: string): void;
}

/**
 * A spinner on stderr with the elapsed time while `work` runs, when stderr is a terminal
 * (never with --json): creates, pauses and builds take seconds.
 */
export async function spin<T>(label: string, json: boolean, work: (p: Progress) => Promise<T>): Promise<T> {
  const tty = !json && process.stderr.isTTY;
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  let text = label;
  const started = Date.now();
  const draw = (): void => {
    if (tty) process.stderr.write(`\r\x1b[K${frames[i++ % frames.length]} ${text} ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };
  const progress: Progress = {
    log: (line) => process.stderr.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`),
    label: (t) => {
      text = t;
    },
  };
  const timer = tty ? setInterval(draw, 80) : null;
  try {
    return await work(progress);
  } finally {
    if (timer) clearInterval(timer);
    if (tty) process.stderr.write('\r\x1b[K');
  }
}
