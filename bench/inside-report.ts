/** Rows for what users do inside a machine: exec (against podman exec) and file transfers. */
import type { PodmanExecResult } from './exec-podman.js';
import type { AgentOpsSamples } from './agent-ops.js';
import type { ExecSamples } from './exec.js';
import type { FilesSamples } from './files.js';
import type { IngressResults } from './ingress.js';
import type { WrkResult } from './wrk.js';
import type { TableRow } from './report.js';
import type { VolumeWriteSamples } from './volumes.js';
import { formatMs, percentile, summarize, type Summary } from './stats.js';

const latency = (s: Summary): string => `${formatMs(s.p50)} / ${formatMs(s.p95)} ms (${formatMs(s.min)}–${formatMs(s.max)}; n=${s.n})`;
const median = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

export function execRow(h: ExecSamples, p: PodmanExecResult): TableRow {
  return {
    what: 'exec `true`, p50 / p95 (min–max)',
    hangar: latency(summarize(h.execMs)),
    podman: p.available ? latency(summarize(p.execMs)) : `podman: unavailable (${p.reason})`,
    notes:
      `Hangar: \`POST /v1/machines/{id}/exec {"cmd": ["true"]}\` answered 200 with exit code 0 (through the in-machine agent: one fork and exec inside the machine), ${h.warmup} untimed warm-ups. ` +
      `podman: \`podman exec <ctr> true\` into a running container of the same rootfs${p.available ? `, ${p.warmup} untimed warm-ups` : ''}.`,
  };
}

export function filesRows(f: FilesSamples): TableRow[] {
  const floor = f.floor.map((c) => ({
    what: `files floor: ${c.mib} MiB up / down through bare node:http, median MB/s`,
    hangar: `${median(c.uploadMBps).toFixed(1)} / ${median(c.downloadMBps).toFixed(1)} MB/s (n=${c.uploadMBps.length})`,
    podman: '—',
    notes:
      'The same client and loops (a worker thread, download hashed and compared) against a node:http server on loopback that keeps the bytes in memory: ' +
      'no machine, agent, store or Fastify. What HTTP on this host allows at this size.',
  }));
  const rows = f.cases.map((c) => ({
    what: `files: ${c.mib} MiB upload / download, median MB/s`,
    hangar: `${median(c.uploadMBps).toFixed(1)} / ${median(c.downloadMBps).toFixed(1)} MB/s (n=${c.uploadMBps.length})`,
    podman: '—',
    notes:
      `\`PUT\` then \`GET /v1/machines/{id}/files?path=…\` of ${c.mib} MiB of random bytes, one at a time on one keep-alive connection; ` +
      `each download hashed and compared. Each call runs the agent's native file tool in the machine (the bytes stream over the agent's socket).` +
      `${c.loop.truncated ? ` Time budget hit after ${c.loop.iterations}.` : ''}`,
  }));
  return [...rows, ...floor];
}

export function volumeRow(v: VolumeWriteSamples): TableRow {
  const vol = median(v.volumeMBps);
  const disk = median(v.diskMBps);
  return {
    what: `volume write, ${v.mib} MiB with fsync, median MB/s`,
    hangar: `${vol.toFixed(1)} MB/s on a volume vs ${disk.toFixed(1)} MB/s on the machine's own disk (×${(vol / disk).toFixed(2)}; n=${v.volumeMBps.length})`,
    podman: '—',
    notes:
      `\`dd if=/dev/zero bs=1M count=${v.mib} conv=fsync\` inside one machine through the exec API, timed by the exec's own duration_ms, ` +
      'into a volume at /data (its own loop-mounted sparse ext4 image, bound into the machine) and into /root (the overlay over the machine\'s loop-mounted ext4 disk), ' +
      `alternating which goes first; each file removed after its run.${v.loop.truncated ? ` Time budget hit after ${v.loop.iterations}.` : ''}`,
  };
}

function rpsCell(w: WrkResult): string {
  return w.available ? `${Math.round(w.requestsPerSecond).toLocaleString('en-US')} req/s (p50 ${formatMs(w.p50Ms)}, p99 ${formatMs(w.p99Ms)} ms)` : `unavailable: ${w.reason}`;
}

export function ingressRow(r: IngressResults): TableRow {
  const both = r.proxied.available && r.direct.available;
  const errs = (w: WrkResult): string => (w.available && (w.non2xx || w.socketErrors) ? ` [${w.non2xx} not 2xx${w.socketErrors ? `; ${w.socketErrors}` : ''}]` : '');
  return {
    what: 'ingress to busybox httpd in a machine, req/s',
    hangar: `${rpsCell(r.proxied)} through the proxy${errs(r.proxied)}; ${rpsCell(r.direct)} direct${errs(r.direct)}`,
    podman: '—',
    notes:
      `wrk, ${r.plan.threads} thread, ${r.plan.connections} connections, ${r.plan.durationS} s each: \`GET /v1/machines/{id}/ports/${r.port}/\` with \`X-Traffic-Access-Token\`, ` +
      `then \`GET http://<private_ip>:${r.port}/\` from the host (the hop the proxy makes). ` +
      `busybox httpd forks a process per connection and closes it after each answer, so the server inside bounds both numbers` +
      `${both ? `; the proxy keeps ${((r.proxied as { requestsPerSecond: number }).requestsPerSecond / (r.direct as { requestsPerSecond: number }).requestsPerSecond * 100).toFixed(0)}% of the direct rate` : ''}.`,
  };
}

/** The in-machine agent's small calls: first streamed byte, 4 KiB write+read, a 1,000-entry listing. */
export function agentOpsRows(a: AgentOpsSamples): TableRow[] {
  const pair = summarize(a.smallPairMs);
  return [
    {
      what: 'exec streaming, first stdout byte of `echo hi`, p50 / p95 (min–max)',
      hangar: latency(summarize(a.firstByteMs)),
      podman: '—',
      notes: '`POST /v1/machines/{id}/exec/stream {"cmd": ["echo", "hi"]}`: from sending the request to the bytes of the first `stdout` event, 5 untimed warm-ups.',
    },
    {
      what: 'files: 4 KiB write then read, one connection',
      hangar: `${((1000 / pair.p50) * 2).toFixed(0)} ops/s (${(1000 / pair.p50).toFixed(0)} pairs/s; pair p50 ${formatMs(pair.p50)} ms, p95 ${formatMs(pair.p95)} ms; n=${pair.n})`,
      podman: '—',
      notes: '`PUT` then `GET /v1/machines/{id}/files?path=/root/small.bin` of 4 KiB, back to back on one keep-alive connection; an op is one call, a pair one write and its read (checked). 10 untimed warm-up pairs.',
    },
    {
      what: `files: list a directory of ${a.listEntries.toLocaleString('en-US')} entries, p50 / p95 (min–max)`,
      hangar: latency(summarize(a.listMs)),
      podman: '—',
      notes: `\`GET /v1/machines/{id}/files/list?path=/root/many\` (${a.listEntries.toLocaleString('en-US')} empty files), every answer checked for all entries; 3 untimed warm-ups.`,
    },
  ];
}
