// The standard conformance agents (spec section 16, conformance/v1/contract.proto).
// Run: AGENTWORKER_HOST_ADDRESS=127.0.0.1:50051 node dist/conformance-worker.js
// Prints "ready" once registered; on SIGTERM drains and exits 0 (AWP-CONN-017).
import { create } from "@bufbuild/protobuf";
import * as C from "./gen/conformance/v1/contract_pb.js";
import { AgentIdSchema, ErrorCode } from "./gen/v1/agentworker_pb.js";
import * as aw from "./worker/index.js";

const TYPE = "conformance";
type PingData = { text: string; seq: number; encoding: C.Encoding };

/** Reads a Ping in either encoding (AWP-CNF-004), or undefined. */
function pingOf(body: aw.Body): PingData | undefined {
  const message = aw.protoOf(body, C.PingSchema);
  if (message !== undefined) return { text: message.text, seq: message.seq, encoding: C.Encoding.PROTOBUF };
  if (body.encoding !== "json" || body.dataType !== "Ping") return undefined;
  const { text = "", seq = 0 } = (body.value ?? {}) as { text?: unknown; seq?: unknown };
  if (typeof text !== "string" || !Number.isInteger(seq)) throw new aw.UnsupportedMessageError("malformed JSON Ping");
  return { text, seq: seq as number, encoding: C.Encoding.JSON };
}

function ping(text: string, seq: number, encoding: C.Encoding): aw.Body {
  return encoding === C.Encoding.PROTOBUF ? aw.proto(C.PingSchema, create(C.PingSchema, { text, seq })) : aw.json("Ping", { text, seq });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

class ConformanceAgent implements aw.Agent {
  private value = "";

  constructor(private readonly rt: aw.AgentRuntime) {}

  async handle(body: aw.Body, ctx: aw.MessageContext): Promise<aw.Body | undefined> {
    const p = pingOf(body);
    if (p !== undefined && ctx.isRpc) {
      const key = this.rt.id.key;
      if (p.encoding === C.Encoding.JSON) return aw.json("Pong", { text: p.text, seq: p.seq, agent_key: key });
      return aw.proto(C.PongSchema, create(C.PongSchema, { text: p.text, seq: p.seq, agentKey: key }));
    }
    if (p !== undefined) {
      // AWP-CNF-005: a receipt on conformance.receipts, source = own key.
      const receipt = create(C.EventReceiptSchema, {
        agentKey: this.rt.id.key,
        topicType: ctx.topic?.type ?? "",
        topicSource: ctx.topic?.source ?? "",
        text: p.text,
        seq: p.seq,
        encoding: p.encoding,
        eventId: ctx.messageId,
      });
      if (ctx.sender !== undefined) receipt.sender = create(AgentIdSchema, ctx.sender);
      this.rt.publish(aw.proto(C.EventReceiptSchema, receipt), { type: "conformance.receipts", source: this.rt.id.key });
      return undefined;
    }
    const command = aw.protoOf(body, C.CommandSchema);
    if (command !== undefined && ctx.isRpc) return aw.proto(C.CommandResultSchema, await this.command(command));
    if (!ctx.isRpc) return undefined;
    throw new aw.UnsupportedMessageError(`the conformance agent does not handle ${body.dataType}`);
  }

  /** Runs a command within its deadline_ms (AWP-CNF-015). */
  private async command(command: C.Command): Promise<C.CommandResult> {
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      if (command.deadlineMs === 0) return;
      timer = setTimeout(() => {
        abort.abort();
        reject(new Error(`command ${JSON.stringify(command.caseId)} passed its deadline of ${command.deadlineMs} ms (deadline exceeded)`));
      }, command.deadlineMs);
    });
    try {
      return await Promise.race([this.run(command, abort.signal), deadline]);
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  private async run(command: C.Command, signal: AbortSignal): Promise<C.CommandResult> {
    const result = create(C.CommandResultSchema, { caseId: command.caseId });
    const action = command.action;
    switch (action.case) {
      case "publish": {
        const { topicType, topicSource, count, firstSeq, text, encoding } = action.value;
        for (let i = 0; i < count && !signal.aborted; i++) {
          this.rt.publish(ping(text, firstSeq + i, encoding), { type: topicType, source: topicSource });
          if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
        }
        result.outcome = { case: "published", value: count };
        break;
      }
      case "call":
        result.outcome = { case: "call", value: await this.call(action.value) };
        break;
      case "fail":
        throw new Error(action.value.message || "failed on command");
      case "stall":
        await sleep(action.value.durationMs, signal);
        result.outcome = { case: "stalledMs", value: action.value.durationMs };
        break;
      case "remember":
        this.value = action.value.value;
        result.outcome = { case: "remembered", value: this.value };
        break;
      case "recall":
        result.outcome = { case: "recalled", value: this.value };
        break;
      default:
        throw new Error(`command ${JSON.stringify(command.caseId)} has no known action`);
    }
    return result;
  }

  /** AWP-CNF-011: calls target with the Ping, reports the Pong or the error. */
  private async call(action: C.CallAction): Promise<C.CallOutcome> {
    const target = { type: action.target?.type ?? "", key: action.target?.key ?? "" };
    const options = action.timeoutMs > 0 ? { timeoutMs: action.timeoutMs } : {};
    try {
      const reply = await this.rt.send(ping(action.ping?.text ?? "", action.ping?.seq ?? 0, action.encoding), target, options);
      const pong = aw.protoOf(reply, C.PongSchema);
      if (pong !== undefined) return create(C.CallOutcomeSchema, { pong, encoding: C.Encoding.PROTOBUF });
      const value = aw.jsonOf(reply, "Pong") as { text?: string; seq?: number; agent_key?: string } | undefined;
      if (value === undefined) throw new Error(`unexpected reply type ${reply.dataType}`);
      const jsonPong = create(C.PongSchema, { text: value.text ?? "", seq: value.seq ?? 0, agentKey: value.agent_key ?? "" });
      return create(C.CallOutcomeSchema, { pong: jsonPong, encoding: C.Encoding.JSON });
    } catch (error) {
      const code = error instanceof aw.RpcError ? error.code : ErrorCode.HANDLER_FAILED;
      return create(C.CallOutcomeSchema, { errorCode: code, errorMessage: error instanceof Error ? error.message : String(error) });
    }
  }

  saveState(): string {
    return JSON.stringify({ value: this.value });
  }

  loadState(state: string): void {
    const loaded: unknown = state === "" ? {} : JSON.parse(state);
    if (typeof loaded !== "object" || loaded === null) throw new Error("conformance state must be a JSON object");
    this.value = String((loaded as { value?: unknown }).value ?? "");
  }
}

async function main(): Promise<number> {
  let config: aw.WorkerConfig;
  try {
    config = aw.configFromEnv();
  } catch (error) {
    process.stderr.write(`conformance-worker: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const types = [C.PingSchema, C.PongSchema, C.CommandSchema, C.CommandResultSchema, C.EventReceiptSchema, C.CallOutcomeSchema];
  const worker = new aw.Worker(config, { messageTypes: types });
  await worker.register(TYPE, (rt) => new ConformanceAgent(rt), [
    aw.typeSubscription("conformance.broadcast", TYPE),
    aw.prefixSubscription("conformance.prefix.", TYPE),
  ]);
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => void worker.stop(5_000).then(resolve);
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await worker.start();
  process.stdout.write("ready\n");
  await stopped;
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`conformance-worker: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
