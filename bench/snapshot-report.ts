import type { CheckpointCase, PodmanCheckpointResult } from './podman-checkpoint.js';
import type { HangarSnapshotResults, PauseResumeSamples } from './snapshots.js';
import { formatMs, percentile, summarize, type Summary } from './stats.js';

/** One line of the comparison table (the same shape as report.ts's rows). */
interface Row {
  what: string;
  hangar: string;
  podman: string;
  notes: string;
}

const MiB = 1024 * 1024;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
const median = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

function latencyCell(s: Summary): string {
  return `${formatMs(s.p50)} / ${formatMs(s.p95)} ms (${formatMs(s.min)}–${formatMs(s.max)}; n=${s.n})`;
}

function budgetNote(loop: { truncated: boolean; iterations: number }): string {
  return loop.truncated ? ` Time budget hit after ${loop.iterations} iterations.` : '';
}

/** The podman cell of a latency row: its samples, or why there are none. */
function podmanCell(c: CheckpointCase, pick: 'checkpointMs' | 'restoreMs'): string {
  return c.available ? latencyCell(summarize(c[pick])) : `podman: unavailable (${c.reason})`;
}

/** "holder sh pid 12 (VmRSS 257.7 MiB; cgroup 257.6 → 257.8 MiB)" */
function heldFacts(h: { holder: { pid: number; rssKiB: number }; holderAfter: { rssKiB: number }; cgroupBytesBefore: number; cgroupBytesAfter: number }): string {
  return (
    `holder \`sh\` pid ${h.holder.pid}, VmRSS ${mib(h.holder.rssKiB * 1024)} → ${mib(h.holderAfter.rssKiB * 1024)}, ` +
    `memory cgroup ${mib(h.cgroupBytesBefore)} → ${mib(h.cgroupBytesAfter)} (before the first pause → after the last resume)`
  );
}

function caseName(s: PauseResumeSamples): string {
  return s.heldMiB === 0 ? 'idle machine' : `${s.heldMiB} MiB held`;
}

function pauseResumeRows(s: PauseResumeSamples, c: CheckpointCase): Row[] {
  const name = caseName(s);
  const setup =
    s.heldMiB === 0
      ? `Base machine \`POST /v1/machines {}\` (memory_mb ${s.memoryMb}) running only init and a busybox \`sh\` that sleeps in a loop (podman: the same, started with \`podman exec\`).`
      : `Machine \`{config: {memory_mb: ${s.memoryMb}}}\`; a busybox \`sh\` (child of init, started with \`runc exec\`) holds ${s.heldMiB} MiB ` +
        `in ${s.heldMiB / 16} shell variables of 16 MiB filled from /dev/zero (one 256 MiB \`$(…)\` peaks at twice that and is OOM-killed at 512 MiB). ` +
        `Measured: ${heldFacts(s)}.` +
        (c.available ? ` podman, same holder via \`podman exec\`: ${heldFacts(c)}.` : '');
  const slowFreezes = s.criuFreezeMs.filter((ms) => ms >= 50).length;
  const freeze = s.criuFreezeMs.length
    ? `; freezing the cgroup took ${formatMs(Math.max(...s.criuFreezeMs))} ms at most and ≥ 50 ms in ${slowFreezes} of ${s.criuFreezeMs.length} dumps (CRIU polls the v1 freezer every 100 ms)`
    : '';
  return [
    {
      what: `pause, ${name}, p50 / p95 (min–max)`,
      hangar: latencyCell(summarize(s.pauseMs)),
      podman: podmanCell(c, 'checkpointMs'),
      notes:
        `${setup} Hangar: \`POST /v1/machines/{id}/pause\` answered 200 \`paused\` with a memory snapshot; ${s.warmup} untimed warm-up cycles. ` +
        `CRIU's own dump (dump.log) p50 ${formatMs(median(s.criuDumpMs))} ms${freeze}; the rest (container removal, unmount, image move, manifest, SQLite, HTTP) p50 ${formatMs(median(s.pauseRestMs))} ms. ` +
        `podman: \`podman container checkpoint <ctr>\` (runc + CRIU, no --tcp-established: not needed)` +
        `${c.available ? `, ${c.warmup} untimed warm-up cycle${c.warmup === 1 ? '' : 's'}` : ''}.${budgetNote(s.loop)}`,
    },
    {
      what: `resume, ${name}, p50 / p95 (min–max)`,
      hangar: latencyCell(summarize(s.resumeMs)),
      podman: podmanCell(c, 'restoreMs'),
      notes:
        `Hangar: \`POST /v1/machines/{id}/resume\` answered 200 \`running\`; CRIU's own restore (restore.log) p50 ${formatMs(median(s.criuRestoreMs))} ms, the rest (mounts, bundle, manifest check, loopback up, SQLite, HTTP) p50 ${formatMs(median(s.resumeRestMs))} ms. ` +
        `podman: \`podman container restore <ctr>\`. After every resume and restore the holder was checked through exec: ` +
        `same pid, still \`sh\`, parent init${s.heldMiB ? `, VmRSS ≥ 95% of ${s.heldMiB} MiB` : ''}.`,
    },
    {
      what: `snapshot on disk, ${name}`,
      hangar: `${mib(median(s.apiSizeBytes))} (size_bytes); du ${mib(median(s.duKiB) * 1024)}`,
      podman: c.available
        ? `${mib(median(c.checkpointDirKiB) * 1024)} (du of checkpoint dir); export ${mib(c.exportBytes)}`
        : `podman: unavailable (${c.reason})`,
      notes:
        'Hangar: `GET /v1/snapshots/{id}` size_bytes and `du -sk <dataDir>/snapshots/<id>` while paused (medians): CRIU images, ' +
        'the sparse ext4 disk image (allocated blocks only) and CRIU\'s logs. podman: `du -sk` of the container\'s checkpoint directory ' +
        '(CRIU images only; its rootfs changes stay in its overlay layer), and the size of one `podman container checkpoint --export x.tar --compress none` after the cycles (images + rootfs changes, deleted afterwards).',
    },
  ];
}

/** Rows for pause/resume (idle and holding memory), snapshot size, live snapshot and fork. */
export function snapshotRows(h: HangarSnapshotResults, p: PodmanCheckpointResult): Row[] {
  const sf = h.snapshotFork;
  return [
    ...pauseResumeRows(h.idle, p.idle),
    ...pauseResumeRows(h.held, p.held),
    {
      what: 'live snapshot `POST /v1/machines/{id}/snapshots`, p50 / p95 (min–max)',
      hangar: latencyCell(summarize(sf.snapshotMs)),
      podman: '—',
      notes:
        `The idle machine, which keeps running: answered 201 with a memory snapshot (median size_bytes ${mib(median(sf.sizeBytes))}); ` +
        `frozen, disk image copied (\`cp --sparse=always\`), \`runc checkpoint --leave-running\`, thawed. ${sf.warmup} untimed warm-up.${budgetNote(sf.loop)}`,
    },
    {
      what: 'fork `POST /v1/machines {snapshot_id}`, p50 / p95 (min–max)',
      hangar: latencyCell(summarize(sf.forkMs)),
      podman: '—',
      notes:
        'One fork of each live snapshot above, answered 201 `running`: disk image copied, CRIU restore, own hostname. ' +
        'Each fork was checked to run the source\'s holder `sh` (same pid, parent init), then destroyed, and the snapshot deleted (untimed).',
    },
  ];
}

/** Summaries of the snapshot samples, for the JSON file. */
export function snapshotSummaries(h: HangarSnapshotResults, p: PodmanCheckpointResult): Record<string, Summary | null> {
  const cp = (c: CheckpointCase, pick: 'checkpointMs' | 'restoreMs'): Summary | null => (c.available ? summarize(c[pick]) : null);
  return {
    pauseIdle: summarize(h.idle.pauseMs),
    resumeIdle: summarize(h.idle.resumeMs),
    pauseHeld: summarize(h.held.pauseMs),
    resumeHeld: summarize(h.held.resumeMs),
    criuDumpIdle: summarize(h.idle.criuDumpMs),
    criuRestoreIdle: summarize(h.idle.criuRestoreMs),
    criuDumpHeld: summarize(h.held.criuDumpMs),
    criuRestoreHeld: summarize(h.held.criuRestoreMs),
    liveSnapshot: summarize(h.snapshotFork.snapshotMs),
    fork: summarize(h.snapshotFork.forkMs),
    podmanCheckpointIdle: cp(p.idle, 'checkpointMs'),
    podmanRestoreIdle: cp(p.idle, 'restoreMs'),
    podmanCheckpointHeld: cp(p.held, 'checkpointMs'),
    podmanRestoreHeld: cp(p.held, 'restoreMs'),
  };
}
