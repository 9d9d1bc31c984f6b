// The worker runtime: connection, registration, dispatch, publish, RPC, reconnect, shutdown.
import {
  create,
  createRegistry,
  fromBinary,
  type DescMessage,
  type Registry,
} from "@bufbuild/protobuf";
import type { Metadata, ServiceError, StatusObject } from "@grpc/grpc-js";
import { status as Status } from "@grpc/grpc-js";
import {
  AddSubscriptionRequestSchema,
  AgentIdSchema,
  Capability,
  ChannelHelloSchema,
  ChannelWelcomeSchema,
  ErrorCode,
  OpenChannelRequestSchema,
  RegisterAgentRequestSchema,
  RemoveSubscriptionRequestSchema,
  RpcRequestSchema,
  RpcResponseSchema,
  type ChannelWelcome,
  type Notice,
  type OpenChannelResponse,
  type RpcRequest,
  type RpcResponse,
} from "../gen/v1/agentworker_pb.js";
import type { CloudEvent } from "../gen/cloudevents/v1/cloudevents_pb.js";
import {
  agentKey,
  type Agent,
  type AgentFactory,
  type AgentRef,
  type MessageContext,
  type SendOptions,
} from "./agent.js";
import type { WorkerConfig } from "./config.js";
import { ControlChannel } from "./control.js";
import { Dispatcher, type Job } from "./dispatcher.js";
import {
  attributeString,
  buildCloudEvent,
  decodePayload,
  encodePayload,
  json,
  NONE_TYPE,
  parseCloudEvent,
  type Body,
  type TopicId,
} from "./encoding.js";
import {
  describeError,
  errorCodeName,
  normalizeErrorCode,
  RpcError,
  UnsupportedMessageError,
} from "./errors.js";
import { createLogger, type Logger } from "./log.js";
import { directSubscription, recipients, toProto, type SubscriptionRule } from "./matching.js";
import { sleep } from "./timers.js";
import { childOf, currentTrace, parseTrace, traceEntries, withTrace } from "./trace.js";
import { HostClient, WELCOME_KEY, type DataStream, type Transport } from "./transport.js";
import { FrameWriter } from "./writer.js";

export type {
  Agent,
  AgentFactory,
  AgentRef,
  AgentRuntime,
  MessageContext,
  SendOptions,
} from "./agent.js";

export const IMPLEMENTATION = "agentworker-ts/0.1.0 (typescript)";
const WELCOME_WAIT_MS = 2_000;
const UNARY_TIMEOUT_MS = 10_000;
const LOCAL_MARGIN_MS = 1_000;
const DEFAULT_RPC_TIMEOUT_MS = 60_000;

export interface WorkerOptions {
  /** Protobuf message types the worker decodes (payloads and events). */
  readonly messageTypes?: readonly DescMessage[];
  /** Reconnect after losing the host (CAPABILITY_RECONNECT); default true. */
  readonly reconnect?: boolean;
  /** Open the control channel and answer save/load state (CAPABILITY_STATE); default true. */
  readonly state?: boolean;
  /** Propagate W3C trace context (CAPABILITY_TRACE_CONTEXT); default true. */
  readonly traceContext?: boolean;
  /** Handlers running at once (a handler waiting for its own calls holds none); default 1000. */
  readonly maxConcurrentHandlers?: number;
  /**
   * Messages read but not yet started, over all agents' mailboxes (AWP-FLOW-031); default
   * 10,000. A request beyond it is answered OVERLOADED; an event beyond it is queued and the
   * worker stops reading until there is room (AWP-FLOW-032).
   */
  readonly maxQueuedMessages?: number;
  /** Gives up the first connection after this long; default 30 s. */
  readonly connectTimeoutMs?: number;
  readonly logger?: Logger;
  readonly onNotice?: (notice: Notice) => void;
  /** Replaces the gRPC client (for tests). */
  readonly transport?: Transport;
  /** Called when the worker stops after losing the host with reconnect turned off. */
  readonly onClosed?: (reason: string) => void;
}

interface Pending {
  resolve(body: Body): void;
  reject(error: RpcError): void;
  timer: NodeJS.Timeout;
}

/** One data channel and what lives and dies with it. */
class Connection {
  readonly pending = new Map<string, Pending>();
  readonly writer: FrameWriter;
  open = true;
  /** Set once every type and subscription is registered on this channel. */
  ready = false;
  welcome: ChannelWelcome | undefined;
  control: ControlChannel | undefined;
  readonly ended: Promise<void>;
  private markEnded!: () => void;

  constructor(readonly call: DataStream) {
    this.writer = new FrameWriter(call);
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
  }

  end(): void {
    this.open = false;
    this.writer.close();
    this.markEnded();
  }

  inForce(capability: Capability): boolean {
    return this.welcome?.capabilities.includes(capability) ?? false;
  }
}

function statusOf(error: unknown): number | undefined {
  return typeof (error as ServiceError | undefined)?.code === "number"
    ? (error as ServiceError).code
    : undefined;
}

export class Worker {
  readonly config: WorkerConfig;
  readonly capabilities: readonly Capability[];
  readonly stats = {
    undecodableEvents: 0,
    unknownFrames: 0,
    notices: 0,
    lateResponses: 0,
    /** Requests answered OVERLOADED because the inbound queue was full (AWP-FLOW-031). */
    overloaded: 0,
    /** Times the worker stopped reading because an event filled the inbound queue. */
    readPauses: 0,
  };
  private readonly log: Logger;
  private readonly client: Transport;
  private readonly registry: Registry;
  private readonly types = new Map<string, AgentFactory>();
  private readonly subscriptions = new Map<string, SubscriptionRule>();
  private readonly agents = new Map<string, Agent>();
  private readonly stopSignal = new AbortController();
  private conn: Connection | undefined;
  private requestCounter = 0;
  private readonly dispatch: Dispatcher;
  private paused: Connection | undefined;
  private reconnecting: Promise<void> | undefined;

  constructor(
    config: WorkerConfig,
    private readonly options: WorkerOptions = {},
  ) {
    this.config = config;
    this.log = options.logger ?? createLogger();
    this.client = options.transport ?? new HostClient(config);
    this.registry = createRegistry(...(options.messageTypes ?? []));
    const caps = [Capability.BATCHING];
    if (options.state !== false) caps.push(Capability.STATE);
    if (options.reconnect !== false) caps.push(Capability.RECONNECT);
    if (options.traceContext !== false) caps.push(Capability.TRACE_CONTEXT);
    if (config.tls !== undefined) caps.push(Capability.TLS);
    if (config.tls?.cert !== undefined) caps.push(Capability.MUTUAL_TLS);
    if (config.token !== undefined) caps.push(Capability.BEARER_TOKEN);
    this.capabilities = caps;
    this.dispatch = new Dispatcher({
      maxRunning: Math.max(1, options.maxConcurrentHandlers ?? 1000),
      maxQueued: Math.max(1, options.maxQueuedMessages ?? 10_000),
    });
    this.dispatch.onRoom = () => this.resumeReading();
  }

  /** Handlers started and not ended, plus messages waiting for their agent or a slot. */
  get pendingMessages(): number {
    return this.dispatch.pending;
  }

  /** The welcome of the current connection; undefined for a legacy host. */
  get welcome(): ChannelWelcome | undefined {
    return this.conn?.welcome;
  }

  get stopping(): boolean {
    return this.stopSignal.signal.aborted;
  }

  /** Registers an agent type with its subscriptions, plus the direct prefix "<type>:". */
  async register(
    type: string,
    factory: AgentFactory,
    subscriptions: ReadonlyArray<Omit<SubscriptionRule, "agentType">> = [],
  ): Promise<void> {
    if (this.types.has(type)) {
      throw new Error(`agent type ${JSON.stringify(type)} is already registered`);
    }
    this.types.set(type, factory);
    const rules = [
      directSubscription(type),
      ...subscriptions.map((s) => ({ ...s, agentType: type })),
    ];
    const conn = this.conn;
    if (conn?.open === true) {
      await this.client.unary(
        "registerAgent",
        create(RegisterAgentRequestSchema, { type }),
        UNARY_TIMEOUT_MS,
      );
    }
    for (const rule of rules) {
      await this.addSubscription(rule);
    }
  }

  /** Adds a subscription; kept locally for matching and re-added after a reconnect. */
  async addSubscription(rule: SubscriptionRule): Promise<void> {
    this.subscriptions.set(rule.id, rule);
    if (this.conn?.open === true) {
      await this.sendSubscription(rule);
    }
  }

  /** Removes a subscription by id. */
  async removeSubscription(id: string): Promise<void> {
    this.subscriptions.delete(id);
    if (this.conn?.open === true) {
      await this.client.unary(
        "removeSubscription",
        create(RemoveSubscriptionRequestSchema, { id }),
        UNARY_TIMEOUT_MS,
      );
    }
  }

  /** Connects, registers every type and subscription; retries until connectTimeoutMs. */
  async start(): Promise<void> {
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? 30_000);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.connect();
        return;
      } catch (error) {
        const code = statusOf(error);
        const retryable =
          code === Status.UNAVAILABLE ||
          code === Status.ALREADY_EXISTS ||
          code === Status.FAILED_PRECONDITION;
        if (!retryable || Date.now() >= deadline || this.stopping) {
          throw error;
        }
        this.log.info(`connect failed (${describeError(error)}); retrying`);
        await sleep(backoffMs(attempt), this.stopSignal.signal);
      }
    }
  }

  /** Publishes an event (AWP-PUB-001); `sender` is set when an agent publishes. */
  publish(body: Body, topic: TopicId, sender?: AgentRef): void {
    const conn = this.conn;
    if (conn?.open !== true) {
      throw new RpcError(ErrorCode.TARGET_UNAVAILABLE, "not connected to the host");
    }
    const event = buildCloudEvent({ topic, body, sender, trace: this.traceToSend(conn) });
    conn.writer.send(
      create(OpenChannelRequestSchema, { message: { case: "cloudEvent", value: event } }),
    );
  }

  /** Sends an RPC and waits for its reply; failures reject with an RpcError (AWP-RPC-022). */
  send(body: Body, target: AgentRef, options: SendOptions = {}, source?: AgentRef): Promise<Body> {
    const conn = this.conn;
    if (conn?.open !== true) {
      return Promise.reject(
        new RpcError(ErrorCode.TARGET_UNAVAILABLE, "not connected to the host"),
      );
    }
    const fallback = Number(conn.welcome?.defaultRpcTimeoutMs ?? 0n) || DEFAULT_RPC_TIMEOUT_MS;
    const timeoutMs = Math.max(1, Math.ceil(options.timeoutMs ?? fallback));
    const requestId = `${++this.requestCounter}`;
    let payload;
    try {
      payload = encodePayload(body);
    } catch (error) {
      return Promise.reject(error);
    }
    const request = create(RpcRequestSchema, {
      requestId,
      target: create(AgentIdSchema, { type: target.type, key: target.key }),
      payload,
      timeoutMs: BigInt(timeoutMs),
      metadata: this.traceToSend(conn) ?? {},
    });
    if (source !== undefined) {
      request.source = create(AgentIdSchema, { type: source.type, key: source.key });
    }
    return new Promise<Body>((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.pending.delete(requestId);
        reject(new RpcError(ErrorCode.DEADLINE_EXCEEDED, `no response within ${timeoutMs} ms`));
      }, timeoutMs + LOCAL_MARGIN_MS);
      conn.pending.set(requestId, { resolve, reject, timer });
      conn.writer.send(
        create(OpenChannelRequestSchema, { message: { case: "request", value: request } }),
      );
    });
  }

  /**
   * Stops (AWP-CONN-017): takes no new work, lets running handlers finish within `graceMs`,
   * then half-closes the channels.
   */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.stopping) return;
    this.stopSignal.abort();
    this.dispatch.cancelQueued(); // waiting requests are answered SHUTTING_DOWN
    if (this.dispatch.pending > 0) {
      const idle = new AbortController(); // ends the grace timer as soon as all is done
      void this.dispatch.whenIdle().then(() => idle.abort());
      await sleep(graceMs, idle.signal);
    }
    const conn = this.conn;
    if (conn !== undefined && conn.open) {
      conn.control?.close();
      conn.call.end();
      await Promise.race([conn.ended, sleep(2_000)]);
      if (conn.open) conn.call.cancel();
    }
    this.client.close();
  }

  // -- connection ------------------------------------------------------------------------

  private async connect(): Promise<void> {
    const hello = create(ChannelHelloSchema, {
      protocolVersion: 1,
      capabilities: [...this.capabilities],
      implementation: IMPLEMENTATION,
    });
    const call = this.client.openChannel(hello);
    const conn = new Connection(call);
    const opened = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, WELCOME_WAIT_MS); // a legacy host may send no headers yet
      call.on("metadata", (metadata: Metadata) => {
        clearTimeout(timer);
        const raw = metadata.get(WELCOME_KEY)[0];
        const welcome = raw instanceof Buffer ? fromBinary(ChannelWelcomeSchema, raw) : undefined;
        if (welcome !== undefined && welcome.protocolVersion !== 1) {
          // Another major version: treat the host as a legacy host (AWP-VER-018).
          this.log.warn(
            `welcome speaks protocol_version ${welcome.protocolVersion}: no capabilities`,
          );
          resolve();
        } else if (welcome !== undefined) {
          conn.welcome = welcome;
          this.log.debug(`welcome: capabilities ${conn.welcome.capabilities.join(",")}`);
          this.configure(conn); // also when the welcome comes after the wait
          resolve();
        } else {
          setTimeout(resolve, 200); // a refused call delivers its status right after
        }
      });
      call.on("status", (status: StatusObject) => {
        clearTimeout(timer);
        reject(Object.assign(new Error(`OpenChannel: ${status.details}`), { code: status.code }));
      });
    });
    call.on("error", () => undefined); // the status listener handles every end
    try {
      await opened;
    } catch (error) {
      conn.end();
      throw error;
    }
    call.removeAllListeners("status");
    call.on("data", (frame: OpenChannelResponse) => this.onFrame(frame, conn));
    call.on("status", (status: StatusObject) => this.onLost(conn, status));
    this.conn = conn;
    this.configure(conn);
    try {
      for (const type of this.types.keys()) {
        await this.client.unary(
          "registerAgent",
          create(RegisterAgentRequestSchema, { type }),
          UNARY_TIMEOUT_MS,
        );
      }
      for (const rule of this.subscriptions.values()) {
        await this.sendSubscription(rule);
      }
    } catch (error) {
      call.cancel();
      throw error;
    }
    if (!conn.open) {
      throw Object.assign(new Error("data channel ended while registering"), {
        code: Status.UNAVAILABLE,
      });
    }
    conn.ready = true;
    this.log.info(`connected to ${this.config.address} as ${this.config.clientId}`);
  }

  /** Returns the current trace context to propagate, when the capability is in force. */
  private traceToSend(conn: Connection): Record<string, string> | undefined {
    const trace = conn.inForce(Capability.TRACE_CONTEXT) ? currentTrace() : undefined;
    return trace === undefined ? undefined : traceEntries(trace);
  }

  /** Applies what the welcome put in force: batching, the control channel (AWP-VER-012). */
  private configure(conn: Connection): void {
    if (this.conn !== conn || !conn.open) return;
    if (conn.inForce(Capability.BATCHING)) {
      conn.writer.maxBatch = conn.welcome?.maxBatchMessages || 1024;
    }
    const legacy = conn.welcome === undefined;
    if (this.options.state !== false && conn.control === undefined) {
      if (legacy || conn.inForce(Capability.STATE)) {
        const agentFor = (id: AgentRef) => this.agentFor(id);
        conn.control = new ControlChannel(this.client.openControlChannel(), this.log, agentFor);
      }
    }
  }

  private async sendSubscription(rule: SubscriptionRule): Promise<void> {
    try {
      await this.client.unary(
        "addSubscription",
        create(AddSubscriptionRequestSchema, { subscription: toProto(rule) }),
        UNARY_TIMEOUT_MS,
      );
    } catch (error) {
      // The host may still hold it from before a reconnect (AWP-CONN-022 makes that succeed).
      if (statusOf(error) !== Status.ALREADY_EXISTS) throw error;
    }
  }

  private onLost(conn: Connection, status: StatusObject): void {
    if (!conn.open) return;
    conn.end();
    conn.control?.close();
    for (const [id, pending] of conn.pending) {
      clearTimeout(pending.timer);
      pending.reject(
        new RpcError(
          ErrorCode.TARGET_UNAVAILABLE,
          `channel ended before request ${id} was answered`,
        ),
      );
    }
    conn.pending.clear();
    if (this.stopping || !conn.ready) return; // connect() reports a failed attempt itself
    this.log.warn(`data channel ended: ${Status[status.code]} ${status.details}`);
    if (this.options.reconnect === false) {
      void this.stop(0).then(() => this.options.onClosed?.(status.details));
      return;
    }
    this.reconnecting ??= this.reconnect().finally(() => (this.reconnecting = undefined));
  }

  /** Reconnects with exponential backoff and jitter, then re-registers (AWP-CONN-020). */
  private async reconnect(): Promise<void> {
    for (let attempt = 0; !this.stopping; attempt++) {
      await sleep(backoffMs(attempt), this.stopSignal.signal);
      if (this.stopping) return;
      try {
        await this.connect();
        this.log.info("reconnected");
        return;
      } catch (error) {
        this.log.info(`reconnect attempt ${attempt + 1} failed: ${describeError(error)}`);
      }
    }
  }

  // -- inbound frames --------------------------------------------------------------------

  private onFrame(frame: OpenChannelResponse, conn: Connection): void {
    const message = frame.message;
    switch (message.case) {
      case "request":
        return this.onRequest(message.value, conn);
      case "response":
        return this.onResponse(message.value, conn);
      case "cloudEvent":
        return this.onEvent(message.value, conn);
      case "batch":
        // A batch is processed in order, as if its frames had arrived one by one (AWP-BAT-003).
        for (const inner of message.value.messages) {
          if (inner.message.case === "batch") {
            this.log.warn("ignoring a nested batch");
          } else {
            this.onFrame(inner, conn);
          }
        }
        return;
      case "notice":
        this.stats.notices++;
        this.log.warn(`notice ${errorCodeName(message.value.code)}: ${message.value.message}`);
        this.options.onNotice?.(message.value);
        return;
      default:
        // A case from a later version: ignore it, keep the channel (AWP-CONN-013).
        this.stats.unknownFrames++;
        this.log.info("ignoring a frame with no known case");
    }
  }

  private onResponse(response: RpcResponse, conn: Connection): void {
    const pending = conn.pending.get(response.requestId);
    if (pending === undefined) {
      this.stats.lateResponses++;
      this.log.info(`discarding a response to request ${response.requestId}, not in flight`);
      return;
    }
    conn.pending.delete(response.requestId);
    clearTimeout(pending.timer);
    const code = normalizeErrorCode(response.errorCode, response.error);
    if (code !== ErrorCode.UNSPECIFIED) {
      pending.reject(new RpcError(code, response.error || errorCodeName(code)));
      return;
    }
    if (response.payload === undefined) {
      // Neither payload nor error: a legacy peer's failure without a message (AWP-RPC-023).
      pending.reject(
        new RpcError(ErrorCode.HANDLER_FAILED, "response has neither payload nor error"),
      );
      return;
    }
    try {
      pending.resolve(decodePayload(response.payload, this.registry));
    } catch (error) {
      pending.reject(
        error instanceof RpcError
          ? error
          : new RpcError(ErrorCode.UNSUPPORTED_MESSAGE, describeError(error)),
      );
    }
  }

  private onRequest(request: RpcRequest, conn: Connection): void {
    let answered = false;
    const respond = (
      fields: Partial<Pick<RpcResponse, "payload" | "error" | "errorCode">>,
    ): void => {
      if (answered) return;
      answered = true; // exactly one response per request (AWP-RPC-006)
      const response = create(RpcResponseSchema, { requestId: request.requestId, ...fields });
      conn.writer.send(
        create(OpenChannelRequestSchema, { message: { case: "response", value: response } }),
      );
    };
    const fail = (errorCode: ErrorCode, error: string): void =>
      respond({ errorCode, error: error || errorCodeName(errorCode) }); // never empty (AWP-ERR-002)
    const target = request.target;
    if (this.stopping) return fail(ErrorCode.SHUTTING_DOWN, "worker is shutting down");
    if (target === undefined || !this.types.has(target.type)) {
      return fail(
        ErrorCode.UNKNOWN_TARGET,
        `this worker serves no agent type ${JSON.stringify(target?.type ?? "")}`,
      );
    }
    let body: Body;
    try {
      body = decodePayload(request.payload, this.registry);
    } catch (error) {
      return fail(ErrorCode.UNSUPPORTED_MESSAGE, describeError(error));
    }
    // The deadline counts from arrival, also while the request waits (AWP-FLOW-033).
    const timeout = Number(request.timeoutMs);
    const signal = timeout > 0 ? AbortSignal.timeout(timeout) : new AbortController().signal;
    const sender =
      request.source !== undefined
        ? { type: request.source.type, key: request.source.key }
        : undefined;
    const ctx: MessageContext = {
      isRpc: true,
      sender,
      topic: undefined,
      messageId: request.requestId,
      signal,
      trace: parseTrace(request.metadata["traceparent"], request.metadata["tracestate"]),
    };
    const id = { type: target.type, key: target.key };
    const job: Job = {
      run: async () => {
        if (signal.aborted) {
          return fail(
            ErrorCode.DEADLINE_EXCEEDED,
            `request waited past its ${timeout} ms deadline before its handler could start`,
          );
        }
        try {
          const reply = await this.run(id, body, ctx);
          respond({ payload: encodePayload(reply ?? json(NONE_TYPE, null)) });
        } catch (error) {
          const code =
            error instanceof UnsupportedMessageError
              ? ErrorCode.UNSUPPORTED_MESSAGE
              : error instanceof RpcError && error.code === ErrorCode.UNKNOWN_TARGET
                ? ErrorCode.UNKNOWN_TARGET
                : ErrorCode.HANDLER_FAILED;
          fail(code, describeError(error));
        }
      },
      cancel: () => fail(ErrorCode.SHUTTING_DOWN, "worker is shutting down"),
    };
    if (!this.dispatch.submit(agentKey(id), job)) {
      this.stats.overloaded++;
      fail(
        ErrorCode.OVERLOADED,
        `the worker's inbound queue is full (${this.dispatch.limits.maxQueued} messages)`,
      );
    }
  }

  private onEvent(event: CloudEvent, conn: Connection): void {
    if (this.stopping) return;
    let received;
    try {
      received = parseCloudEvent(event, this.registry);
    } catch (error) {
      this.stats.undecodableEvents++; // AWP-PUB-022: log with the event id, count, carry on
      this.log.warn(`cannot decode event ${event.id}: ${describeError(error)}`);
      return;
    }
    const signal = new AbortController().signal;
    const trace = parseTrace(
      attributeString(event, "traceparent"),
      attributeString(event, "tracestate"),
    );
    for (const id of recipients(this.subscriptions.values(), received.topic, received.sender)) {
      if (!this.types.has(id.type)) continue;
      const ctx: MessageContext = {
        isRpc: false,
        sender: received.sender,
        topic: received.topic,
        messageId: received.id,
        signal,
        trace,
      };
      const job: Job = {
        run: () =>
          this.run(id, received.body, ctx).then(
            () => undefined,
            (error: unknown) => {
              this.log.warn(
                `handler of ${id.type}/${id.key} failed on event ${received.id}: ${describeError(error)}`,
              );
            },
          ),
        cancel: () =>
          this.log.info(`stopping: event ${received.id} not delivered to ${id.type}/${id.key}`),
      };
      // An event is never dropped: past the queue's bound it still queues, and the worker
      // stops reading until there is room (AWP-FLOW-032).
      this.dispatch.submit(agentKey(id), job, true);
    }
    if (this.dispatch.full) this.pauseReading(conn);
  }

  private pauseReading(conn: Connection): void {
    if (this.paused?.open === true || !conn.open) return;
    this.paused = conn;
    this.stats.readPauses++;
    this.log.info("inbound queue full: not reading the data channel until it has room");
    conn.call.pause();
  }

  private resumeReading(): void {
    const conn = this.paused;
    if (conn === undefined || this.dispatch.full) return;
    this.paused = undefined;
    if (conn.open) conn.call.resume();
  }

  /** Runs an agent's handler with the received trace context as its parent (AWP-OBS-004). */
  private async run(id: AgentRef, body: Body, ctx: MessageContext): Promise<Body | undefined> {
    const agent = this.agentFor(id);
    if (agent === undefined) {
      throw new RpcError(ErrorCode.UNKNOWN_TARGET, `no agent type ${id.type}`);
    }
    const trace = ctx.trace === undefined ? undefined : childOf(ctx.trace);
    return await withTrace(trace, () => agent.handle(body, ctx));
  }

  /** Returns the agent of an AgentId, created on first use (AWP-REG-004). */
  private agentFor(id: AgentRef): Agent | undefined {
    const name = agentKey(id);
    let agent = this.agents.get(name);
    if (agent === undefined) {
      const factory = this.types.get(id.type);
      if (factory === undefined) return undefined;
      const self = { type: id.type, key: id.key };
      agent = factory({
        id: self,
        publish: (body, topic) => this.publish(body, topic, self),
        send: async (body, target, options) => {
          // While its handler waits for the reply, the agent gives up its slot (AWP-FLOW-030).
          const resumed = this.dispatch.beginCall(name);
          try {
            return await this.send(body, target, options, self);
          } finally {
            await resumed();
          }
        },
      });
      this.agents.set(name, agent);
    }
    return agent;
  }
}

/** Backoff before reconnect attempt n: 250 ms doubling to 30 s, with jitter (50-100 %). */
export function backoffMs(attempt: number): number {
  const base = Math.min(30_000, 250 * 2 ** Math.min(attempt, 10));
  return Math.round(base / 2 + (Math.random() * base) / 2);
}
