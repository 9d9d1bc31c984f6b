// The control channel: answers SaveStateRequest and LoadStateRequest (spec section 13).
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageShape,
} from "@bufbuild/protobuf";
import { AnySchema, type Any } from "@bufbuild/protobuf/wkt";
import {
  ErrorCode,
  LoadStateRequestSchema,
  LoadStateResponseSchema,
  OpenControlChannelRequestSchema,
  SaveStateRequestSchema,
  SaveStateResponseSchema,
  type AgentId,
  type OpenControlChannelResponse,
} from "../gen/v1/agentworker_pb.js";
import type { Agent, AgentRef } from "./agent.js";
import { typeNameOfUrl } from "./encoding.js";
import { describeError } from "./errors.js";
import type { Logger } from "./log.js";
import type { ControlStream } from "./transport.js";

const V1_PACKAGE = "agentworker.v1.";
const LEGACY_PACKAGE = "agents.";

/** Packs a control message under the v1 or the legacy (AutoGen) name (AWP-CTL-002). */
function pack<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
  legacy: boolean,
): Any {
  const name = legacy ? LEGACY_PACKAGE + schema.name : schema.typeName;
  return create(AnySchema, {
    typeUrl: `type.googleapis.com/${name}`,
    value: toBinary(schema, message),
  });
}

/** Reads "agentid=TYPE/KEY". */
function agentOfDestination(destination: string): AgentRef | undefined {
  const match = /^agentid=([^/]*)\/(.*)$/s.exec(destination);
  return match?.[1] === undefined || match[2] === undefined
    ? undefined
    : { type: match[1], key: match[2] };
}

export class ControlChannel {
  constructor(
    private readonly call: ControlStream,
    private readonly log: Logger,
    private readonly agentFor: (id: AgentRef) => Agent | undefined,
  ) {
    call.on("data", (frame: OpenControlChannelResponse) => void this.onFrame(frame));
    call.on("error", () => undefined);
    call.on("status", (status: { code: number; details: string }) => {
      if (status.code !== 0)
        this.log.info(`control channel ended: ${status.code} ${status.details}`);
    });
  }

  close(): void {
    this.call.end();
  }

  private async onFrame(frame: OpenControlChannelResponse): Promise<void> {
    const any = frame.rpcMessage;
    if (any === undefined) return;
    const name = typeNameOfUrl(any.typeUrl);
    const legacy = name.startsWith(LEGACY_PACKAGE);
    const short = legacy ? name.slice(LEGACY_PACKAGE.length) : name.slice(V1_PACKAGE.length);
    if (!legacy && !name.startsWith(V1_PACKAGE)) return;
    let reply: Any;
    try {
      if (short === "SaveStateRequest") {
        const request = fromBinary(SaveStateRequestSchema, any.value);
        reply = pack(
          SaveStateResponseSchema,
          await this.save(request.agentId, frame.destination),
          legacy,
        );
      } else if (short === "LoadStateRequest") {
        const request = fromBinary(LoadStateRequestSchema, any.value);
        reply = pack(
          LoadStateResponseSchema,
          await this.load(request.agentId, frame.destination, request.state),
          legacy,
        );
      } else {
        return; // responses to calls this worker never makes
      }
    } catch (error) {
      this.log.warn(`control frame ${frame.rpcId} does not decode: ${describeError(error)}`);
      return;
    }
    this.call.write(
      create(OpenControlChannelRequestSchema, {
        rpcId: frame.rpcId,
        destination: frame.respondTo ?? "",
        rpcMessage: reply,
      }),
    );
  }

  private agent(id: AgentId | undefined, destination: string): Agent {
    const ref = id !== undefined ? { type: id.type, key: id.key } : agentOfDestination(destination);
    const agent = ref === undefined ? undefined : this.agentFor(ref);
    if (ref === undefined || agent === undefined) {
      throw new Error(
        `no agent ${ref === undefined ? destination : `${ref.type}/${ref.key}`} on this worker`,
      );
    }
    return agent;
  }

  private async save(id: AgentId | undefined, destination: string) {
    try {
      const agent = this.agent(id, destination);
      if (agent.saveState === undefined) throw new Error("this agent has no state to save");
      return create(SaveStateResponseSchema, { state: await agent.saveState() });
    } catch (error) {
      return create(SaveStateResponseSchema, {
        error: describeError(error),
        errorCode: ErrorCode.HANDLER_FAILED,
      });
    }
  }

  private async load(id: AgentId | undefined, destination: string, state: string) {
    try {
      const agent = this.agent(id, destination);
      if (agent.loadState === undefined) throw new Error("this agent cannot load state");
      await agent.loadState(state);
      return create(LoadStateResponseSchema, {});
    } catch (error) {
      return create(LoadStateResponseSchema, {
        error: describeError(error),
        errorCode: ErrorCode.HANDLER_FAILED,
      });
    }
  }
}
