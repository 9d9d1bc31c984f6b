import { create, toBinary } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import {
  Capability,
  ChannelWelcomeSchema,
  ErrorCode,
  type ChannelHello,
  type OpenChannelRequest,
} from "../gen/v1/agentworker_pb.js";
import { json } from "../worker/encoding.js";
import { RpcError } from "../worker/errors.js";
import type { Logger } from "../worker/log.js";
import type { ControlStream, DataStream, Transport } from "../worker/transport.js";
import { Worker } from "../worker/worker.js";

/** A data channel that records what the worker writes and ends when told. */
class FakeStream extends EventEmitter {
  written: OpenChannelRequest[] = [];
  write(frame: OpenChannelRequest): boolean {
    this.written.push(frame);
    return true;
  }
  end(): void {
    this.finish(0);
  }
  cancel(): void {
    this.finish(1);
  }
  pause(): void {}
  resume(): void {}
  finish(code: number): void {
    setImmediate(() => this.emit("status", { code, details: "ended", metadata: new Metadata() }));
  }
}

class FakeTransport implements Transport {
  readonly channels: FakeStream[] = [];
  hellos: ChannelHello[] = [];
  openChannel(hello: ChannelHello): DataStream {
    this.hellos.push(hello);
    const stream = new FakeStream();
    this.channels.push(stream);
    const welcome = create(ChannelWelcomeSchema, { protocolVersion: 1, capabilities: [] });
    const metadata = new Metadata();
    metadata.set("agentworker-welcome-bin", Buffer.from(toBinary(ChannelWelcomeSchema, welcome)));
    setImmediate(() => stream.emit("metadata", metadata));
    return stream as unknown as DataStream;
  }
  openControlChannel(): ControlStream {
    return new FakeStream() as unknown as ControlStream;
  }
  unary(): Promise<never> {
    return Promise.resolve({} as never);
  }
  close(): void {}
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const config = { address: "127.0.0.1:1", clientId: "c", tls: undefined, token: undefined };

async function started(reconnect = false): Promise<[Worker, FakeTransport]> {
  const transport = new FakeTransport();
  const worker = new Worker(config, { transport, reconnect, logger: quiet, state: false });
  await worker.register("a", () => ({ handle: () => undefined }));
  await worker.start();
  return [worker, transport];
}

test("losing the channel fails calls in flight with TARGET_UNAVAILABLE (AWP-CONN-019)", async () => {
  const [worker, transport] = await started();
  const call = worker.send(json("Ping", {}), { type: "b", key: "k" }, { timeoutMs: 60_000 });
  assert.equal(transport.channels[0]?.written[0]?.message.case, "request");
  transport.channels[0]?.finish(14);
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof RpcError);
    assert.equal(error.code, ErrorCode.TARGET_UNAVAILABLE);
    return true;
  });
  await worker.stop(0);
});

test("a call with no answer fails locally after its timeout plus 1 s (AWP-RPC-012)", async () => {
  const [worker] = await started();
  const begun = Date.now();
  await assert.rejects(
    worker.send(json("Ping", {}), { type: "b", key: "k" }, { timeoutMs: 100 }),
    (error: unknown) => error instanceof RpcError && error.code === ErrorCode.DEADLINE_EXCEEDED,
  );
  const waited = Date.now() - begun;
  assert.ok(waited >= 1_050 && waited < 5_000, `${waited} ms`);
  await worker.stop(0);
});

test("the hello announces what the worker implements (AWP-VER-010, AWP-VER-016)", async () => {
  const [worker, transport] = await started(true);
  const hello = transport.hellos[0];
  assert.equal(hello?.protocolVersion, 1);
  assert.deepEqual(hello?.capabilities, [
    Capability.BATCHING,
    Capability.RECONNECT,
    Capability.TRACE_CONTEXT,
  ]);
  await worker.stop(0);
});
