// Helpers for worker programs: deadlines and the process life cycle.
import { configFromEnv } from "./config.js";
import { describeError } from "./errors.js";
import { Worker, type WorkerOptions } from "./worker.js";

/**
 * Runs `work` for at most `ms` (0: no limit); past it, aborts the signal given to `work` and
 * rejects with `expired()`.
 */
export async function withDeadline<T>(
  ms: number,
  work: (signal: AbortSignal) => Promise<T>,
  expired: () => Error,
): Promise<T> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    if (ms > 0) timer = setTimeout(() => (reject(expired()), abort.abort()), ms);
  });
  try {
    return await Promise.race([work(abort.signal), deadline]);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/**
 * Runs a worker program: reads the AGENTWORKER_* environment, lets `setup` register agent
 * types, starts, prints "ready", and on SIGTERM or SIGINT drains (5 s grace) and exits 0
 * (AWP-CONN-017). A configuration error exits 2, a failed start 1.
 */
export function runWorker(
  name: string,
  options: WorkerOptions,
  setup: (worker: Worker) => Promise<void>,
): void {
  const fail = (code: number) => (error: unknown) => {
    process.stderr.write(`${name}: ${describeError(error)}\n`);
    process.exit(code);
  };
  let worker: Worker;
  try {
    const onClosed = (reason: string) => fail(1)(new Error(`lost the host: ${reason}`));
    worker = new Worker(configFromEnv(), { onClosed, ...options });
  } catch (error) {
    return fail(2)(error);
  }
  const stop = (): void => void worker.stop(5_000).finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  setup(worker)
    .then(() => worker.start())
    .then(() => process.stdout.write("ready\n"), fail(1));
}
