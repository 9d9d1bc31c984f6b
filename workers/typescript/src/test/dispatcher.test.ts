import assert from "node:assert/strict";
import { test } from "node:test";
import { Dispatcher, type Job } from "../worker/dispatcher.js";

/** A job that records when it starts and ends only when released. */
class Gate implements Job {
  started = false;
  cancelled = false;
  private release!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.release = resolve));
  constructor(
    readonly name: string,
    private readonly log: string[],
  ) {}
  run(): Promise<void> {
    this.started = true;
    this.log.push(`start ${this.name}`);
    return this.done.then(() => void this.log.push(`end ${this.name}`));
  }
  cancel(): void {
    this.cancelled = true;
  }
  async end(): Promise<void> {
    this.release();
    await this.done;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test("one agent runs one message at a time, in arrival order (AWP-CONN-040)", async () => {
  const log: string[] = [];
  const d = new Dispatcher({ maxRunning: 10, maxQueued: 10 });
  const [a1, a2, a3] = ["a1", "a2", "a3"].map((n) => new Gate(n, log));
  assert.ok(a1 && a2 && a3);
  for (const job of [a1, a2, a3]) assert.ok(d.submit("t/a", job));
  assert.deepEqual(log, ["start a1"]);
  assert.equal(d.queued, 2);
  await a1.end();
  assert.deepEqual(log, ["start a1", "end a1", "start a2"]);
  await a2.end();
  await a3.end();
  assert.deepEqual(log, ["start a1", "end a1", "start a2", "end a2", "start a3", "end a3"]);
  assert.equal(d.pending, 0);
});

test("different agents run concurrently, up to the bound on running handlers (AWP-CONN-041)", async () => {
  const log: string[] = [];
  const d = new Dispatcher({ maxRunning: 2, maxQueued: 10 });
  const jobs = ["a", "b", "c"].map((n) => new Gate(n, log));
  jobs.forEach((job, i) => assert.ok(d.submit(`t/${i}`, job)));
  assert.deepEqual(log, ["start a", "start b"]);
  assert.equal(d.running, 2);
  await jobs[1]?.end();
  assert.deepEqual(log, ["start a", "start b", "end b", "start c"]);
});

test("a full inbound queue refuses a request but takes an event (AWP-FLOW-031, AWP-FLOW-032)", async () => {
  const log: string[] = [];
  let rooms = 0;
  const d = new Dispatcher({ maxRunning: 1, maxQueued: 2 });
  d.onRoom = () => rooms++;
  const jobs = ["r", "q1", "q2", "over", "event"].map((n) => new Gate(n, log));
  const [running, q1, q2, over, event] = jobs;
  assert.ok(running && q1 && q2 && over && event);
  assert.ok(d.submit("t/a", running));
  assert.ok(d.submit("t/b", q1));
  assert.ok(d.submit("t/c", q2));
  assert.ok(d.full);
  assert.equal(d.submit("t/d", over), false, "a request past the bound is refused");
  assert.ok(d.submit("t/e", event, true), "an event past the bound is kept");
  assert.equal(d.queued, 3);
  rooms = 0;
  await running.end();
  await q1.end();
  assert.equal(d.queued, 1);
  assert.ok(!d.full && rooms > 0, "room is announced once the queue drains");
  assert.ok(!over.started);
});

test("a handler waiting for its own call gives up its slot and takes one back", async () => {
  const log: string[] = [];
  const d = new Dispatcher({ maxRunning: 1, maxQueued: 10 });
  let resumed: (() => Promise<void>) | undefined;
  let callDone!: () => void;
  const reply = new Promise<void>((resolve) => (callDone = resolve));
  const caller: Job = {
    run: async () => {
      log.push("caller start");
      resumed = d.beginCall("t/caller");
      await reply;
      await resumed();
      log.push("caller goes on");
    },
    cancel() {},
  };
  const callee = new Gate("callee", log);
  const other = new Gate("other", log);
  assert.ok(d.submit("t/caller", caller));
  assert.equal(d.running, 0);
  assert.equal(d.parked, 1);
  assert.ok(d.submit("t/callee", callee));
  assert.ok(d.submit("t/other", other));
  assert.deepEqual(log, ["caller start", "start callee"]);
  callDone(); // the reply arrives while the callee still holds the only slot
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(!log.includes("caller goes on"), "the caller waits for a slot");
  await callee.end();
  assert.deepEqual(log.slice(2), ["end callee", "caller goes on", "start other"]);
  await other.end();
  assert.equal(d.pending, 0);
});

test("stopping cancels waiting messages and waits for running ones", async () => {
  const log: string[] = [];
  const d = new Dispatcher({ maxRunning: 1, maxQueued: 10 });
  const [first, second] = ["first", "second"].map((n) => new Gate(n, log));
  assert.ok(first && second);
  d.submit("t/a", first);
  d.submit("t/a", second);
  d.cancelQueued();
  assert.ok(second.cancelled && !second.started);
  let idle = false;
  const whenIdle = d.whenIdle().then(() => (idle = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(!idle);
  await first.end();
  await whenIdle;
  assert.equal(d.pending, 0);
});
