/** CRIU's own timings, read from its dump.log / restore.log: each line starts with "(seconds since CRIU started)". */

/** Where CRIU's time went, in milliseconds. */
export interface CriuLogTimes {
  /** From CRIU's start to its last log line. */
  totalMs: number;
  /** Freezing the cgroup (dump only): from "freezing cgroup" to "freezing processes: … done". */
  freezeMs: number | null;
}

const STAMP = /^\((\d+)\.(\d+)\)/;

function stampMs(line: string): number | null {
  const m = STAMP.exec(line);
  return m ? Number(m[1]) * 1000 + Number(`0.${m[2]}`) * 1000 : null;
}

/** The timings in a CRIU log, or null when it holds no timestamped line. */
export function criuLogTimes(log: string): CriuLogTimes | null {
  let last: number | null = null;
  let freezeStart: number | null = null;
  let freezeEnd: number | null = null;
  for (const line of log.split('\n')) {
    const t = stampMs(line);
    if (t === null) continue;
    last = t;
    if (freezeStart === null && line.includes('freezing cgroup')) freezeStart = t;
    else if (freezeStart !== null && freezeEnd === null && /freezing processes: \d+ attempts done/.test(line)) freezeEnd = t;
  }
  if (last === null) return null;
  return { totalMs: last, freezeMs: freezeStart !== null && freezeEnd !== null ? freezeEnd - freezeStart : null };
}
