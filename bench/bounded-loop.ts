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
