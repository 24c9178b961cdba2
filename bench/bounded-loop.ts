/** Every measurement loop is bounded twice: by a number of iterations and by wall time. */

/** Limits of one measurement loop. */
export interface LoopBounds {
  /** Iterations at most. */
  count: number;
  /** Wall time after which no new iteration starts. */
  budgetMs: number;
  /** Aborted on SIGINT/SIGTERM: the loop throws so the caller's cleanup runs. */
  signal: AbortSignal;
}

/** How a bounded loop ended. */
export interface LoopOutcome {
  iterations: number;
  /** True when the time budget ran out before `count` iterations. */
  truncated: boolean;
  elapsedMs: number;
}

/** Run `step(i)` one at a time until `count` iterations or the time budget is spent. */
export async function boundedLoop(bounds: LoopBounds, step: (i: number) => Promise<void>): Promise<LoopOutcome> {
  const started = performance.now();
  let i = 0;
  for (; i < bounds.count; i++) {
    bounds.signal.throwIfAborted();
    if (performance.now() - started > bounds.budgetMs) break;
    await step(i);
  }
  return { iterations: i, truncated: i < bounds.count, elapsedMs: performance.now() - started };
}

/**
 * Like `boundedLoop`, with up to `concurrency` steps in flight: no new step starts once
 * `count` have started, the time budget is spent, a step returned false, or a step
 * threw (that error is rethrown once the steps in flight have ended).
 */
export async function boundedPool(bounds: LoopBounds, concurrency: number, step: (i: number) => Promise<boolean | void>): Promise<LoopOutcome> {
  const started = performance.now();
  let next = 0;
  let stop = false;
  let failed: { err: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < bounds.count && !stop && !bounds.signal.aborted && performance.now() - started <= bounds.budgetMs) {
      const i = next++;
      try {
        if ((await step(i)) === false) stop = true;
      } catch (err) {
        failed ??= { err };
        stop = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  bounds.signal.throwIfAborted();
  if (failed !== null) throw (failed as { err: unknown }).err;
  return { iterations: next, truncated: next < bounds.count, elapsedMs: performance.now() - started };
}
