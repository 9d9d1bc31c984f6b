// The worker's inbound path against a host that loops the worker's own calls back to it.
import { create, toBinary } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import {
  AgentIdSchema,
  ChannelWelcomeSchema,
  ErrorCode,
  OpenChannelResponseSchema,
  RpcRequestSchema,
  RpcResponseSchema,
  type ChannelHello,
  type OpenChannelRequest,
  type OpenChannelResponse,
  type RpcResponse,
} from "../gen/v1/agentworker_pb.js";
import type { MessageContext } from "../worker/agent.js";
import { buildCloudEvent, encodePayload, json, type Body } from "../worker/encoding.js";
import type { Logger } from "../worker/log.js";
import { typeSubscription } from "../worker/matching.js";
import type { ControlStream, DataStream, Transport } from "../worker/transport.js";
import { Worker, type WorkerOptions } from "../worker/worker.js";

const WAIT_MS = 10_000;
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const config = { address: "127.0.0.1:1", clientId: "c", tls: undefined, token: undefined };

/**
 * A data channel whose host relays the worker's requests back to the same worker (as another
 * worker's would be) and their responses back to the caller. Pausing holds frames back, like a
 * paused gRPC stream.
 */
class LoopbackStream extends EventEmitter {
  readonly answers = new Map<string, RpcResponse>();
  private readonly held: OpenChannelResponse[] = [];
  private paused = false;
  private answered: (() => void) | undefined;

  write(frame: OpenChannelRequest): boolean {
    const message = frame.message;
    if (message.case === "request") {
      const request = create(RpcRequestSchema, {
        ...message.value,
        requestId: `loop-${message.value.requestId}`,
      });
      this.deliver(
        create(OpenChannelResponseSchema, { message: { case: "request", value: request } }),
      );
    } else if (message.case === "response") {
      const id = message.value.requestId;
      if (id.startsWith("loop-")) {
        const response = create(RpcResponseSchema, { ...message.value, requestId: id.slice(5) });
        this.deliver(
          create(OpenChannelResponseSchema, { message: { case: "response", value: response } }),
        );
      } else {
        this.answers.set(id, message.value);
        this.answered?.();
      }
    }
    return true;
  }

  /** Sends the worker a frame from the host. */
  deliver(frame: OpenChannelResponse): void {
    setImmediate(() => {
      if (this.paused) this.held.push(frame);
      else this.emit("data", frame);
    });
  }

  /** Waits until `count` requests from the host have been answered. */
  async answersFor(count: number): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (this.answers.size < count) {
      const left = deadline - Date.now();
      assert.ok(left > 0, `${this.answers.size} of ${count} requests answered in time`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.answered = () => (clearTimeout(timer), resolve());
      });
    }
  }

  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    for (const frame of this.held.splice(0)) this.emit("data", frame);
  }
  get isPaused(): boolean {
    return this.paused;
  }
  end(): void {
    setImmediate(() =>
      this.emit("status", { code: 0, details: "ended", metadata: new Metadata() }),
    );
  }
  cancel(): void {
    this.end();
  }
}

class LoopbackTransport implements Transport {
  stream: LoopbackStream | undefined;
  openChannel(_hello: ChannelHello): DataStream {
    const stream = new LoopbackStream();
    this.stream = stream;
    const welcome = create(ChannelWelcomeSchema, { protocolVersion: 1, capabilities: [] });
    const metadata = new Metadata();
    metadata.set("agentworker-welcome-bin", Buffer.from(toBinary(ChannelWelcomeSchema, welcome)));
    setImmediate(() => stream.emit("metadata", metadata));
    return stream as unknown as DataStream;
  }
  openControlChannel(): ControlStream {
    throw new Error("no control channel in these tests");
  }
  unary(): Promise<never> {
    return Promise.resolve({} as never);
  }
  close(): void {}
}

/** The `text` of a JSON body. */
const textOf = (body: Body): string =>
  body.encoding === "json" ? String((body.value as { text?: unknown }).text) : "";

type Handler = (body: Body, ctx: MessageContext, key: string) => Promise<Body | undefined>;

async function startWorker(
  options: WorkerOptions,
  agents: Record<string, (send: Worker["send"], key: string) => Handler>,
): Promise<[Worker, LoopbackStream]> {
  const transport = new LoopbackTransport();
  const worker = new Worker(config, { ...options, transport, logger: quiet, state: false });
  for (const [type, make] of Object.entries(agents)) {
    await worker.register(
      type,
      (rt) => {
        const handler = make((body, target, opts) => rt.send(body, target, opts), rt.id.key);
        return { handle: (body, ctx) => handler(body, ctx, rt.id.key) };
      },
      [typeSubscription(`${type}.topic`, type)],
    );
  }
  await worker.start();
  assert.ok(transport.stream);
  return [worker, transport.stream];
}

function request(
  stream: LoopbackStream,
  id: string,
  type: string,
  key: string,
  body: Body,
  timeoutMs = 30_000n,
): void {
  const value = create(RpcRequestSchema, {
    requestId: id,
    target: create(AgentIdSchema, { type, key }),
    payload: encodePayload(body),
    timeoutMs,
  });
  stream.deliver(create(OpenChannelResponseSchema, { message: { case: "request", value } }));
}

function event(stream: LoopbackStream, topicType: string, source: string, text: string): void {
  const value = buildCloudEvent({
    topic: { type: topicType, source },
    body: json("Ping", { text }),
    sender: undefined,
    trace: undefined,
  });
  stream.deliver(create(OpenChannelResponseSchema, { message: { case: "cloudEvent", value } }));
}

test("every slot held by a handler calling another agent on the same worker: the calls complete (AWP-FLOW-030)", async () => {
  const slots = 2;
  let running = 0;
  let most = 0;
  const [worker, stream] = await startWorker(
    { maxConcurrentHandlers: slots, reconnect: false },
    {
      outer: (send, key) => async () => {
        most = Math.max(most, ++running);
        try {
          return await send(json("Ping", { key }), { type: "inner", key }, { timeoutMs: 20_000 });
        } finally {
          running--;
        }
      },
      inner: (_send, key) => async () => json("Pong", { key }),
    },
  );
  const callers = slots * 3;
  for (let i = 0; i < callers; i++) request(stream, `r${i}`, "outer", `k${i}`, json("Go", {}));
  await stream.answersFor(callers);
  for (let i = 0; i < callers; i++) {
    const answer = stream.answers.get(`r${i}`);
    assert.equal(answer?.errorCode, ErrorCode.UNSPECIFIED, answer?.error);
    assert.match(new TextDecoder().decode(answer?.payload?.data), new RegExp(`"k${i}"`));
  }
  assert.ok(most >= slots, `at most ${most} callers waited at once`);
  await worker.stop(0);
});

test("one agent handles its messages one at a time, in arrival order (AWP-CONN-040)", async () => {
  const log: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const [worker, stream] = await startWorker(
    { reconnect: false },
    {
      a: (_send, key) => async (body, ctx) => {
        const text = textOf(body);
        log.push(`start ${key}:${text}`);
        if (text === "first") await released; // the agent's next message must wait for this
        log.push(`end ${key}:${text}`);
        return ctx.isRpc ? json("Pong", {}) : undefined;
      },
    },
  );
  event(stream, "a.topic", "x", "first");
  request(stream, "r-second", "a", "x", json("Ping", { text: "second" }));
  event(stream, "a.topic", "y", "other-agent");
  const deadline = Date.now() + WAIT_MS;
  while (!log.includes("end y:other-agent")) {
    assert.ok(Date.now() < deadline, `another agent ran meanwhile: ${log.join(", ")}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(!log.includes("start x:second"), `x overlapped: ${log.join(", ")}`);
  release();
  await stream.answersFor(1);
  assert.deepEqual(
    log.filter((line) => line.includes("x:")),
    ["start x:first", "end x:first", "start x:second", "end x:second"],
  );
  await worker.stop(0);
});

test("a full inbound queue answers requests OVERLOADED and holds events, reading on after (AWP-FLOW-031, AWP-FLOW-032)", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const seen: string[] = [];
  const [worker, stream] = await startWorker(
    { maxConcurrentHandlers: 1, maxQueuedMessages: 2, reconnect: false },
    {
      a: () => async (body, ctx) => {
        const text = textOf(body);
        if (text === "block") await released;
        seen.push(text);
        return ctx.isRpc ? json("Pong", {}) : undefined;
      },
    },
  );
  request(stream, "block", "a", "k0", json("Ping", { text: "block" }));
  request(stream, "q1", "a", "k1", json("Ping", { text: "q1" }));
  request(stream, "q2", "a", "k2", json("Ping", { text: "q2" }));
  request(stream, "over", "a", "k3", json("Ping", { text: "over" }));
  await stream.answersFor(1);
  assert.equal(stream.answers.get("over")?.errorCode, ErrorCode.OVERLOADED);
  event(stream, "a.topic", "k4", "kept");
  const deadline = Date.now() + WAIT_MS;
  while (!stream.isPaused) {
    assert.ok(Date.now() < deadline, "the worker did not stop reading when full");
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(worker.stats.readPauses, 1);
  release();
  await stream.answersFor(4);
  while (!seen.includes("kept")) {
    assert.ok(Date.now() < deadline, `the event was not delivered: ${seen.join(", ")}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(!stream.isPaused);
  assert.deepEqual([...seen].sort(), ["block", "kept", "q1", "q2"]);
  assert.equal(worker.stats.overloaded, 1);
  await worker.stop(0);
});

test("a request whose deadline passes while it waits is answered DEADLINE_EXCEEDED unrun (AWP-FLOW-033)", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const seen: string[] = [];
  const [worker, stream] = await startWorker(
    { reconnect: false },
    {
      a: () => async (body) => {
        const text = textOf(body);
        if (text === "block") await released;
        seen.push(text);
        return json("Pong", {});
      },
    },
  );
  request(stream, "block", "a", "k", json("Ping", { text: "block" }));
  request(stream, "expires", "a", "k", json("Ping", { text: "expires" }), 1n);
  await new Promise((resolve) => setTimeout(resolve, 20)); // lets the 1 ms deadline pass
  release();
  await stream.answersFor(2);
  assert.equal(stream.answers.get("expires")?.errorCode, ErrorCode.DEADLINE_EXCEEDED);
  assert.deepEqual(seen, ["block"]);
  await worker.stop(0);
});
