// Inbound work: one mailbox per agent, a bound on running handlers and a bounded inbound queue
// (AWP-CONN-040, AWP-FLOW-030..033). The reader hands messages here and never waits for a slot.

/** One message for one agent. */
export interface Job {
  /** Runs the agent's handler and answers the message; never rejects. */
  run(): Promise<void>;
  /** Called instead of `run` when the message will not run (the worker stops). */
  cancel(): void;
}

export interface DispatchLimits {
  /** Handlers holding a slot at once. */
  readonly maxRunning: number;
  /** Messages read but not started, over all mailboxes. */
  readonly maxQueued: number;
}

/** One started handler; it gives up its slot while it waits for its own calls. */
class Run {
  slot = true;
  calls = 0;
  ended = false;
  wake: (() => void) | undefined;
}

interface Mailbox {
  /** Messages waiting, in arrival order. */
  readonly jobs: Job[];
  /** The agent's handler that has started and not ended (at most one, AWP-CONN-040). */
  current: Run | undefined;
}

export class Dispatcher {
  private readonly boxes = new Map<string, Mailbox>();
  /** Agents with messages waiting and no handler running, in the order they became ready. */
  private readonly ready: string[] = [];
  /** Handlers whose calls have ended, waiting for a slot to go on; served before `ready`. */
  private readonly resumers: Run[] = [];
  private idleWaiters: (() => void)[] = [];
  /** Handlers holding a slot. */
  running = 0;
  /** Handlers waiting for their calls without a slot. */
  parked = 0;
  /** Messages waiting in mailboxes. */
  queued = 0;
  /** Called whenever the inbound queue has room (the reader may resume). */
  onRoom: (() => void) | undefined;

  constructor(readonly limits: DispatchLimits) {}

  /** True when a new message would exceed the inbound queue's bound. */
  get full(): boolean {
    return this.queued >= this.limits.maxQueued;
  }

  /** Handlers started and not ended, plus messages waiting. */
  get pending(): number {
    return this.running + this.parked + this.queued;
  }

  /**
   * Adds a message to the agent's mailbox; it starts at once when the agent is idle and a slot
   * is free. Returns false, and keeps nothing, when it would wait and the queue is full, unless
   * `force` is set (an event, which is never dropped: AWP-FLOW-032).
   */
  submit(agent: string, job: Job, force = false): boolean {
    let box = this.boxes.get(agent);
    const idle = box === undefined || (box.current === undefined && box.jobs.length === 0);
    if (idle && this.running < this.limits.maxRunning && this.resumers.length === 0) {
      if (box === undefined) this.boxes.set(agent, (box = { jobs: [], current: undefined }));
      this.start(agent, box, job);
      return true;
    }
    if (this.full && !force) return false;
    if (box === undefined) this.boxes.set(agent, (box = { jobs: [], current: undefined }));
    box.jobs.push(job);
    this.queued++;
    if (box.current === undefined && box.jobs.length === 1) this.ready.push(agent);
    return true;
  }

  /**
   * Marks the start of a call by the agent's running handler; the returned function, awaited
   * when the call ends, gives the handler a slot again before it goes on. While a handler waits
   * for its calls it holds no slot, so the agents it calls on this worker can run (a bound on
   * such handlers could deadlock call chains within one worker; the calls they wait for are
   * bounded by the host's in-flight limit instead).
   */
  beginCall(agent: string): () => Promise<void> {
    const run = this.boxes.get(agent)?.current;
    if (run === undefined) return async () => undefined; // a call from outside a handler
    run.calls++;
    if (run.calls === 1 && run.slot) {
      run.slot = false;
      this.running--;
      this.parked++;
      this.pump();
    }
    return () => this.endCall(run);
  }

  /** Gives every waiting message's `cancel`, empties the mailboxes. */
  cancelQueued(): void {
    const jobs: Job[] = [];
    for (const [agent, box] of this.boxes) {
      jobs.push(...box.jobs.splice(0));
      if (box.current === undefined) this.boxes.delete(agent);
    }
    this.ready.length = 0;
    this.queued = 0;
    for (const job of jobs) job.cancel();
    this.onRoom?.();
  }

  /** Resolves once no handler runs or waits and no message waits. */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async endCall(run: Run): Promise<void> {
    run.calls--;
    if (run.calls > 0 || run.slot || run.ended) return;
    if (this.running < this.limits.maxRunning && this.resumers.length === 0) {
      this.take(run);
      return;
    }
    await new Promise<void>((resolve) => {
      run.wake = resolve;
      this.resumers.push(run);
    });
  }

  private take(run: Run): void {
    run.slot = true;
    this.parked--;
    this.running++;
  }

  private start(agent: string, box: Mailbox, job: Job): void {
    const run = new Run();
    box.current = run;
    this.running++;
    let done: Promise<void>;
    try {
      done = job.run(); // starts synchronously: handlers start in arrival order
    } catch {
      done = Promise.resolve();
    }
    const finish = (): void => this.finish(agent, box, run);
    done.then(finish, finish);
  }

  private finish(agent: string, box: Mailbox, run: Run): void {
    run.ended = true;
    box.current = undefined;
    if (run.slot) this.running--;
    else this.parked--;
    if (box.jobs.length > 0) this.ready.push(agent);
    else if (this.boxes.get(agent) === box) this.boxes.delete(agent);
    this.pump();
    if (this.pending === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Fills free slots: first handlers going on after their calls, then waiting messages. */
  private pump(): void {
    while (this.running < this.limits.maxRunning) {
      const run = this.resumers.shift();
      if (run !== undefined) {
        if (run.ended) continue;
        this.take(run);
        run.wake?.();
        continue;
      }
      const agent = this.ready.shift();
      if (agent === undefined) break;
      const box = this.boxes.get(agent);
      const job = box?.jobs.shift();
      if (box === undefined || job === undefined) continue;
      this.queued--;
      this.start(agent, box, job);
    }
    if (!this.full) this.onRoom?.();
  }
}
