/** `GET` throughput measured by wrk (Debian's package), a load generator in a process of its own. */
import { spawn } from 'node:child_process';

export interface WrkPlan {
  threads: number;
  connections: number;
  durationS: number;
}

export type WrkResult =
  | { available: false; reason: string }
  | {
      available: true;
      version: string;
      plan: WrkPlan;
      path: string;
      requestsPerSecond: number;
      requests: number;
      /** Answers other than 2xx/3xx, as wrk counts them. */
      non2xx: number;
      socketErrors: string | null;
      /** wrk's latency distribution (--latency), milliseconds. */
      p50Ms: number;
      p99Ms: number;
    };

/** "1.23ms", "456.00us", "1.02s" → milliseconds. */
export function wrkDurationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

/** The numbers of one wrk report (stdout of `wrk --latency …`). */
export function parseWrk(out: string): { requestsPerSecond: number; requests: number; non2xx: number; socketErrors: string | null; p50Ms: number; p99Ms: number } {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out)?.[1];
  const requests = /^\s*(\d+) requests in /m.exec(out)?.[1];
  if (rps === undefined || requests === undefined) throw new Error(`wrk printed no result: ${out.slice(0, 300)}`);
  return {
    requestsPerSecond: Number(rps),
    requests: Number(requests),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: /^\s*Socket errors: (.*)$/m.exec(out)?.[1]?.trim() ?? null,
    p50Ms: wrkDurationMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99Ms: wrkDurationMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
  };
}

function spawnText(cmd: string, args: string[], signal: AbortSignal): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Run wrk against `baseUrl + path` with these request headers; unavailable when wrk is not installed. */
export async function measureWrk(baseUrl: string, headers: Record<string, string>, path: string, plan: WrkPlan, signal: AbortSignal): Promise<WrkResult> {
  const probe = await spawnText('wrk', ['--version'], signal).catch((err: Error) => err);
  if (probe instanceof Error) return { available: false, reason: `wrk not found (${probe.message}); scripts/bench-setup.sh installs it` };
  const version = /wrk (\S+)/.exec(probe.out)?.[1] ?? 'unknown';
  const args = ['--latency', '-t', String(plan.threads), '-c', String(plan.connections), '-d', `${plan.durationS}s`, ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), `${baseUrl}${path}`];
  const res = await spawnText('wrk', args, signal);
  if (res.code !== 0) throw new Error(`wrk exited with ${res.code}: ${res.out.slice(0, 300)}`);
  return { available: true, version, plan, path, ...parseWrk(res.out) };
}
