import { boundedLoop, type LoopOutcome } from './bounded-loop.js';
import type { BenchInstance } from './hangar-instance.js';

const MIB = 1024 * 1024;

/** What `measureVolumes` measures. */
export interface VolumesPlan {
  /** MiB written per run. */
  mib: number;
  /** Runs per target (volume, machine disk), alternated so both see the same host. */
  count: number;
  /** Wall time after which no new pair of runs starts. */
  budgetMs: number;
}

/** 256 MiB, five times to each target. */
export const DEFAULT_VOLUMES_PLAN: VolumesPlan = { mib: 256, count: 5, budgetMs: 120_000 };

/** Write throughput samples, in MB/s (10^6 bytes per second of the command's own duration). */
export interface VolumeWriteSamples {
  mib: number;
  /** Into a volume mounted at /data. */
  volumeMBps: number[];
  /** Into the machine's own disk (its writable layer, /root). */
  diskMBps: number[];
  loop: LoopOutcome;
}

interface ExecBody {
  exit_code: number;
  stderr: string;
  duration_ms: number;
}

/**
 * In one fresh machine with a volume at /data, write `mib` MiB of zeros with
 * `dd bs=1M conv=fsync` (so the bytes reach the image, not only the page cache) to the
 * volume and to the machine's own disk in turn, removing each file after its run. The
 * time is the exec's own `duration_ms`; the machine and the volume are removed afterwards.
 */
export async function measureVolumes(inst: BenchInstance, signal: AbortSignal, plan: VolumesPlan = DEFAULT_VOLUMES_PLAN): Promise<VolumeWriteSamples> {
  // Room for one file and the file system's own blocks, on both sides.
  const sizeMb = plan.mib * 2 + 64;
  const volume = await inst.client.expect<{ id: string }>(201, 'POST', '/v1/volumes', { name: `bench-${Date.now()}`, size_mb: sizeMb });
  let machineId: string | null = null;
  try {
    const machine = await inst.client.expect<{ id: string }>(201, 'POST', '/v1/machines', {
      config: { disk_mb: sizeMb },
      volumes: [{ volume_id: volume.body.id, mount_path: '/data' }],
    });
    machineId = machine.body.id;
    const id = machineId;
    const write = async (dir: string): Promise<number> => {
      const file = `${dir}/bench.bin`;
      const res = await inst.client.expect<ExecBody>(
        200,
        'POST',
        `/v1/machines/${id}/exec`,
        { cmd: ['dd', 'if=/dev/zero', `of=${file}`, 'bs=1M', `count=${plan.mib}`, 'conv=fsync'], timeout_ms: 600_000 },
        620_000,
      );
      if (res.body.exit_code !== 0) throw new Error(`dd into ${dir} exited ${res.body.exit_code}: ${res.body.stderr.slice(0, 300)}`);
      await inst.client.expect(200, 'POST', `/v1/machines/${id}/exec`, { cmd: ['rm', '-f', file] });
      return (plan.mib * MIB) / 1e6 / (res.body.duration_ms / 1000);
    };
    const volumeMBps: number[] = [];
    const diskMBps: number[] = [];
    const loop = await boundedLoop({ count: plan.count, budgetMs: plan.budgetMs, signal }, async (i) => {
      // Alternate which goes first: neither always meets a host still flushing the other's bytes.
      if (i % 2 === 0) {
        volumeMBps.push(await write('/data'));
        diskMBps.push(await write('/root'));
      } else {
        diskMBps.push(await write('/root'));
        volumeMBps.push(await write('/data'));
      }
    });
    return { mib: plan.mib, volumeMBps, diskMBps, loop };
  } finally {
    if (machineId !== null) await inst.client.expect(200, 'DELETE', `/v1/machines/${machineId}`).catch(() => undefined);
    await inst.client.expect(204, 'DELETE', `/v1/volumes/${volume.body.id}`).catch(() => undefined);
  }
}
