// The standard conformance agents (spec section 16, conformance/v1/contract.proto).
// Run: AGENTWORKER_HOST_ADDRESS=127.0.0.1:50051 node dist/conformance-worker.js
// Prints "ready" once registered; on SIGTERM drains and exits 0 (AWP-CONN-017).
import { create } from "@bufbuild/protobuf";
import * as C from "./gen/conformance/v1/contract_pb.js";
import { AgentIdSchema, ErrorCode } from "./gen/v1/agentworker_pb.js";
import * as aw from "./worker/index.js";

const TYPE = "conformance";
type PingData = { text: string; seq: number; encoding: C.Encoding; stallMs: number };
type JsonPong = { text?: string; seq?: number; agent_key?: string };

/** Reads a Ping in either encoding (AWP-CNF-004), or undefined. */
function pingOf(body: aw.Body): PingData | undefined {
  const message = aw.protoOf(body, C.PingSchema);
  if (message !== undefined) {
    const { text, seq, stallMs } = message;
    return { text, seq, encoding: C.Encoding.PROTOBUF, stallMs };
  }
  if (body.encoding !== "json" || body.dataType !== "Ping") return undefined;
  const { text = "", seq = 0 } = (body.value ?? {}) as { text?: unknown; seq?: unknown };
  // seq is an int32; 7.0 reads as 7, anything else does not decode (AWP-CNF-024).
  if (
    typeof text !== "string" ||
    typeof seq !== "number" ||
    !Number.isInteger(seq) ||
    seq < -2147483648 ||
    seq > 2147483647
  ) {
    throw new aw.UnsupportedMessageError("malformed JSON Ping");
  }
  return { text, seq, encoding: C.Encoding.JSON, stallMs: 0 };
}

function ping(text: string, seq: number, encoding: C.Encoding): aw.Body {
  return encoding === C.Encoding.PROTOBUF
    ? aw.proto(C.PingSchema, create(C.PingSchema, { text, seq }))
    : aw.json("Ping", { text, seq });
}

class ConformanceAgent implements aw.Agent {
  private value = "";

  constructor(private readonly rt: aw.AgentRuntime) {}

  async handle(body: aw.Body, ctx: aw.MessageContext): Promise<aw.Body | undefined> {
    const p = pingOf(body);
    const key = this.rt.id.key;
    if (p !== undefined && ctx.isRpc) {
      return p.encoding === C.Encoding.JSON
        ? aw.json("Pong", { text: p.text, seq: p.seq, agent_key: key })
        : aw.proto(C.PongSchema, create(C.PongSchema, { text: p.text, seq: p.seq, agentKey: key }));
    }
    if (p !== undefined) {
      // AWP-CNF-030: the agent's next message waits behind this stall (AWP-CONN-040).
      if (p.stallMs > 0) await aw.sleep(p.stallMs);
      // AWP-CNF-005: a receipt on conformance.receipts, source = own key.
      const receipt = create(C.EventReceiptSchema, {
        agentKey: key,
        topicType: ctx.topic?.type ?? "",
        topicSource: ctx.topic?.source ?? "",
        text: p.text,
        seq: p.seq,
        encoding: p.encoding,
        eventId: ctx.messageId,
      });
      if (ctx.sender !== undefined) receipt.sender = create(AgentIdSchema, ctx.sender);
      const topic = { type: "conformance.receipts", source: key };
      this.rt.publish(aw.proto(C.EventReceiptSchema, receipt), topic);
      return undefined;
    }
    if (!ctx.isRpc) return undefined;
    const command = aw.protoOf(body, C.CommandSchema);
    if (command === undefined) {
      throw new aw.UnsupportedMessageError(
        `the conformance agent does not handle ${body.dataType}`,
      );
    }
    // AWP-CNF-015: a command never runs past its deadline_ms.
    const expired = () =>
      new Error(`command ${command.caseId} passed its deadline of ${command.deadlineMs} ms`);
    const run = (signal: AbortSignal) => this.run(command, signal);
    return aw.proto(C.CommandResultSchema, await aw.withDeadline(command.deadlineMs, run, expired));
  }

  private async run(command: C.Command, signal: AbortSignal): Promise<C.CommandResult> {
    const result = create(C.CommandResultSchema, { caseId: command.caseId });
    const action = command.action;
    switch (action.case) {
      case "publish": {
        const { topicType: type, topicSource: source, count, firstSeq, text } = action.value;
        for (let i = 0; i < count && !signal.aborted; i++) {
          this.rt.publish(ping(text, firstSeq + i, action.value.encoding), { type, source });
          if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
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
        await aw.sleep(action.value.durationMs, signal);
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
        throw new Error(`command ${command.caseId} has no known action`);
    }
    return result;
  }

  /** AWP-CNF-011: calls the target with the Ping, reports the Pong or the error. */
  private async call(action: C.CallAction): Promise<C.CallOutcome> {
    const target = { type: action.target?.type ?? "", key: action.target?.key ?? "" };
    const options = action.timeoutMs > 0 ? { timeoutMs: action.timeoutMs } : {};
    const request = ping(action.ping?.text ?? "", action.ping?.seq ?? 0, action.encoding);
    try {
      const reply = await this.rt.send(request, target, options);
      const pong = aw.protoOf(reply, C.PongSchema);
      if (pong !== undefined) {
        return create(C.CallOutcomeSchema, { pong, encoding: C.Encoding.PROTOBUF });
      }
      const value = aw.jsonOf(reply, "Pong") as JsonPong | undefined;
      if (value === undefined) throw new Error(`unexpected reply type ${reply.dataType}`);
      const { text = "", seq = 0, agent_key: agentKey = "" } = value;
      const jsonPong = create(C.PongSchema, { text, seq, agentKey });
      return create(C.CallOutcomeSchema, { pong: jsonPong, encoding: C.Encoding.JSON });
    } catch (error) {
      const errorCode = error instanceof aw.RpcError ? error.code : ErrorCode.HANDLER_FAILED;
      const errorMessage = error instanceof Error ? error.message : String(error);
      return create(C.CallOutcomeSchema, { errorCode, errorMessage });
    }
  }

  saveState(): string {
    return JSON.stringify({ value: this.value });
  }

  loadState(state: string): void {
    const loaded: unknown = state === "" ? {} : JSON.parse(state);
    if (typeof loaded !== "object" || loaded === null) {
      throw new Error("conformance state must be a JSON object");
    }
    this.value = String((loaded as { value?: unknown }).value ?? "");
  }
}

const messageTypes = [C.PingSchema, C.PongSchema, C.CommandSchema, C.EventReceiptSchema];
aw.runWorker("conformance-worker", { messageTypes }, (worker) =>
  worker.register(TYPE, (rt) => new ConformanceAgent(rt), [
    aw.typeSubscription("conformance.broadcast", TYPE),
    aw.prefixSubscription("conformance.prefix.", TYPE),
  ]),
);
