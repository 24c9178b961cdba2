/**
 * Where the latency and throughput loops run their HTTP client: a worker thread of its
 * own, as a real client is a process of its own. Run in the server's event loop, the
 * client's own work (building requests, parsing answers, hashing downloads) would be
 * counted as the server's, and would delay the server's work on the same thread.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { agentOpsLoops, type AgentOpsPlan, type AgentOpsSamples } from './agent-ops.js';
import { execLoop, type ExecSamples } from './exec.js';
import { filesLoops, type FilesPlan, type FilesSamples } from './files.js';

/** The server and machine a loop calls, as its team. */
export interface ClientTarget {
  url: string;
  apiKey: string;
  machineId: string;
}

/** The loops that run in a worker, with what each is given and answers. */
interface Tasks {
  exec: { args: { warmup: number; count: number; budgetMs: number }; result: ExecSamples };
  agentOps: { args: AgentOpsPlan; result: AgentOpsSamples };
  files: { args: FilesPlan; result: FilesSamples };
}

interface Job<K extends keyof Tasks = keyof Tasks> {
  task: K;
  target: ClientTarget;
  args: Tasks[K]['args'];
}

type Answer = { ok: true; result: unknown } | { ok: false; message: string };

/**
 * Run one loop in a new worker thread and return its samples. Aborting `signal` ends the
 * worker (the loop stops where it is) and rejects.
 */
export function inClientWorker<K extends keyof Tasks>(task: K, target: ClientTarget, args: Tasks[K]['args'], signal: AbortSignal): Promise<Tasks[K]['result']> {
  signal.throwIfAborted();
  const worker = new Worker(new URL(import.meta.url), { workerData: { task, target, args } satisfies Job<K> });
  return new Promise<Tasks[K]['result']>((resolve, reject) => {
    const onAbort = (): void => {
      void worker.terminate();
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (a: Answer) => {
      if (a.ok) resolve(a.result as Tasks[K]['result']);
      else reject(new Error(a.message));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      signal.removeEventListener('abort', onAbort);
      reject(new Error(`the ${task} client worker exited with ${code} before answering`));
    });
  });
}

async function runJob(job: Job): Promise<unknown> {
  // Never aborted from inside: the main thread ends the worker instead.
  const signal = new AbortController().signal;
  switch (job.task) {
    case 'exec': {
      const a = job.args as Tasks['exec']['args'];
      return execLoop(job.target, a.warmup, { count: a.count, budgetMs: a.budgetMs, signal });
    }
    case 'agentOps':
      return agentOpsLoops(job.target, job.args as AgentOpsPlan, signal);
    case 'files':
      return filesLoops(job.target, job.args as FilesPlan, signal);
  }
}

if (!isMainThread && (workerData as Job | undefined)?.target) {
  runJob(workerData as Job).then(
    (result) => parentPort!.postMessage({ ok: true, result } satisfies Answer),
    (err: unknown) => parentPort!.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) } satisfies Answer),
  );
}
