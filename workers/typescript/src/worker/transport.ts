// The gRPC client of AgentRpcService, built on @grpc/grpc-js and the generated schemas.
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  AgentRpcService,
  OpenChannelRequestSchema,
  OpenChannelResponseSchema,
  OpenControlChannelRequestSchema,
  OpenControlChannelResponseSchema,
  type ChannelHello,
  type OpenChannelRequest,
  type OpenChannelResponse,
  type OpenControlChannelRequest,
  type OpenControlChannelResponse,
} from "../gen/v1/agentworker_pb.js";
import { ChannelHelloSchema } from "../gen/v1/agentworker_pb.js";
import type { WorkerConfig } from "./config.js";

export const HELLO_KEY = "agentworker-hello-bin";
export const WELCOME_KEY = "agentworker-welcome-bin";
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export type DataStream = grpc.ClientDuplexStream<OpenChannelRequest, OpenChannelResponse>;
export type ControlStream = grpc.ClientDuplexStream<
  OpenControlChannelRequest,
  OpenControlChannelResponse
>;
type Service = typeof AgentRpcService.method;
type Method = keyof Service;
export type UnaryMethod =
  "registerAgent" | "addSubscription" | "removeSubscription" | "getSubscriptions";

function path(method: Method): string {
  return `/${AgentRpcService.typeName}/${AgentRpcService.method[method].name}`;
}

function serializer<Desc extends DescMessage>(schema: Desc) {
  return (value: MessageShape<Desc>): Buffer => Buffer.from(toBinary(schema, value));
}

function deserializer<Desc extends DescMessage>(schema: Desc) {
  return (bytes: Buffer): MessageShape<Desc> => fromBinary(schema, bytes);
}

function credentials(config: WorkerConfig): grpc.ChannelCredentials {
  const tls = config.tls;
  if (tls === undefined) {
    return grpc.credentials.createInsecure();
  }
  return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}

/** What a worker needs from its connection to the host (a seam for tests). */
export interface Transport {
  openChannel(hello: ChannelHello): DataStream;
  openControlChannel(): ControlStream;
  unary<M extends UnaryMethod>(
    method: M,
    request: MessageShape<Service[M]["input"]>,
    timeoutMs: number,
  ): Promise<MessageShape<Service[M]["output"]>>;
  close(): void;
}

/** One gRPC channel to the host; every call carries client-id (and the token, if any). */
export class HostClient implements Transport {
  private readonly client: grpc.Client;

  constructor(private readonly config: WorkerConfig) {
    const options: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    };
    if (config.tls?.serverName !== undefined) {
      options["grpc.ssl_target_name_override"] = config.tls.serverName;
      options["grpc.default_authority"] = config.tls.serverName;
    }
    this.client = new grpc.Client(config.address, credentials(config), options);
  }

  /** Returns the metadata every call carries (AWP-CONN-002, AWP-SEC-005). */
  metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set("client-id", this.config.clientId);
    if (this.config.token !== undefined) {
      metadata.set("authorization", `Bearer ${this.config.token}`);
    }
    return metadata;
  }

  /** Opens the data channel with the hello in `agentworker-hello-bin` (AWP-VER-010). */
  openChannel(hello: ChannelHello): DataStream {
    const metadata = this.metadata();
    metadata.set(HELLO_KEY, Buffer.from(toBinary(ChannelHelloSchema, hello)));
    return this.client.makeBidiStreamRequest(
      path("openChannel"),
      serializer(OpenChannelRequestSchema),
      deserializer(OpenChannelResponseSchema),
      metadata,
    );
  }

  /** Opens the control channel (section 13). */
  openControlChannel(): ControlStream {
    return this.client.makeBidiStreamRequest(
      path("openControlChannel"),
      serializer(OpenControlChannelRequestSchema),
      deserializer(OpenControlChannelResponseSchema),
      this.metadata(),
    );
  }

  /** Makes a unary call that fails after `timeoutMs`. */
  unary<M extends UnaryMethod>(
    method: M,
    request: MessageShape<Service[M]["input"]>,
    timeoutMs: number,
  ): Promise<MessageShape<Service[M]["output"]>> {
    const { input, output } = AgentRpcService.method[method];
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        path(method),
        serializer(input),
        deserializer(output),
        request,
        this.metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, response) => {
          if (error !== null || response === undefined) {
            reject(error ?? new Error(`${method}: no response`));
          } else {
            resolve(response as MessageShape<Service[M]["output"]>);
          }
        },
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
