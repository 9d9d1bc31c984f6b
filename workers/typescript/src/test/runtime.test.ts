import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  OpenChannelRequestSchema,
  RpcResponseSchema,
  type OpenChannelRequest,
} from "../gen/v1/agentworker_pb.js";
import { configFromEnv, ConfigError, isLoopback } from "../worker/config.js";
import { withDeadline } from "../worker/process.js";
import { backoffMs } from "../worker/worker.js";
import { FrameWriter, type FrameSink } from "../worker/writer.js";

function frame(id: string): OpenChannelRequest {
  const response = create(RpcResponseSchema, { requestId: id });
  return create(OpenChannelRequestSchema, { message: { case: "response", value: response } });
}

class FakeSink implements FrameSink {
  written: OpenChannelRequest[] = [];
  full = false;
  private drain: (() => void) | undefined;
  write(f: OpenChannelRequest): boolean {
    this.written.push(f);
    return !this.full;
  }
  once(_event: "drain", listener: () => void): void {
    this.drain = listener;
  }
  release(): void {
    this.full = false;
    this.drain?.();
  }
}

const ids = (frames: OpenChannelRequest[]): string[] =>
  frames.flatMap((f) =>
    f.message.case === "batch"
      ? f.message.value.messages.map((m) =>
          m.message.case === "response" ? m.message.value.requestId : "?",
        )
      : f.message.case === "response"
        ? [f.message.value.requestId]
        : ["?"],
  );

test("the writer writes at once and batches only what queued while the stream was full (AWP-BAT-004)", () => {
  const sink = new FakeSink();
  const writer = new FrameWriter(sink);
  writer.maxBatch = 2;
  writer.send(frame("1"));
  assert.equal(sink.written.length, 1);
  sink.full = true;
  writer.send(frame("2")); // written, then the stream reports full
  writer.send(frame("3"));
  writer.send(frame("4"));
  writer.send(frame("5"));
  assert.equal(sink.written.length, 2);
  sink.release();
  assert.deepEqual(
    sink.written.map((f) => f.message.case),
    ["response", "response", "batch", "response"],
  );
  assert.deepEqual(ids(sink.written), ["1", "2", "3", "4", "5"]);
});

test("without batching in force the writer never sends a batch (AWP-BAT-001)", () => {
  const sink = new FakeSink();
  const writer = new FrameWriter(sink);
  sink.full = true;
  for (const id of ["1", "2", "3"]) writer.send(frame(id));
  sink.release();
  assert.ok(sink.written.every((f) => f.message.case === "response"));
  assert.deepEqual(ids(sink.written), ["1", "2", "3"]);
});

test("reconnect backoff starts within 100 ms to 1 s, doubles and caps at 30 s", () => {
  for (let i = 0; i < 50; i++) {
    const first = backoffMs(0);
    assert.ok(first >= 100 && first <= 1000, `${first}`);
    assert.ok(backoffMs(20) <= 30_000 && backoffMs(20) >= 15_000);
  }
});

test("configuration comes from the AGENTWORKER_* variables (AWP-CNF-001)", () => {
  const config = configFromEnv({
    AGENTWORKER_HOST_ADDRESS: "127.0.0.1:1",
    AGENTWORKER_CLIENT_ID: "me",
  });
  assert.equal(config.address, "127.0.0.1:1");
  assert.equal(config.clientId, "me");
  assert.equal(config.tls, undefined);
  const fresh = configFromEnv({ AGENTWORKER_HOST_ADDRESS: "localhost:1" });
  assert.match(fresh.clientId, /^[0-9a-f-]{36}$/);
  assert.throws(() => configFromEnv({}), ConfigError);
});

test("a token is never sent in clear off loopback (AWP-SEC-007)", () => {
  assert.throws(
    () => configFromEnv({ AGENTWORKER_HOST_ADDRESS: "example.com:443", AGENTWORKER_TOKEN: "t" }),
    ConfigError,
  );
  assert.equal(
    configFromEnv({ AGENTWORKER_HOST_ADDRESS: "[::1]:5", AGENTWORKER_TOKEN: "t" }).token,
    "t",
  );
  assert.ok(isLoopback("localhost:1") && isLoopback("127.0.0.2:1") && !isLoopback("10.0.0.1:1"));
});

test("withDeadline aborts the work and rejects when the deadline passes (AWP-CNF-015)", async () => {
  let aborted = false;
  const slow = (signal: AbortSignal) =>
    new Promise<string>((resolve) => {
      signal.addEventListener("abort", () => ((aborted = true), resolve("late")));
    });
  await assert.rejects(
    withDeadline(20, slow, () => new Error("deadline")),
    /deadline/,
  );
  assert.ok(aborted);
  assert.equal(
    await withDeadline(
      0,
      async () => "no limit",
      () => new Error("x"),
    ),
    "no limit",
  );
  assert.equal(
    await withDeadline(
      1000,
      async () => "fast",
      () => new Error("x"),
    ),
    "fast",
  );
});
