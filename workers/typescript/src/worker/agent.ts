// What an agent is and what it sees: the types shared by the runtime and the control channel.
import type { Body, TopicId } from "./encoding.js";
import type { TraceContext } from "./trace.js";

/** An agent's identity: its type and its key. */
export interface AgentRef {
  readonly type: string;
  readonly key: string;
}

/** What a handler knows about the message it handles. */
export interface MessageContext {
  /** True for an RPC request (the handler's return value is the reply), false for an event. */
  readonly isRpc: boolean;
  /** The calling or publishing agent, when the message names one. */
  readonly sender: AgentRef | undefined;
  /** The topic an event arrived on (undefined for an RPC). */
  readonly topic: TopicId | undefined;
  /** The CloudEvent id of an event, the request id of an RPC. */
  readonly messageId: string;
  /** Aborted when the request's timeout_ms passes (AWP-RPC-013). */
  readonly signal: AbortSignal;
  /** The received W3C trace context (traceparent/tracestate), if any. */
  readonly trace: TraceContext | undefined;
}

/**
 * An agent instance: one per AgentId (AWP-REG-004). The worker hands it one message at a time,
 * in arrival order (AWP-CONN-040), so its own fields need no guarding.
 */
export interface Agent {
  /** Handles a message; for an RPC the returned body is the reply (undefined sends JSON null). */
  handle(body: Body, ctx: MessageContext): Promise<Body | undefined> | Body | undefined;
  saveState?(): string | Promise<string>;
  loadState?(state: string): void | Promise<void>;
}

export interface SendOptions {
  /** The call's timeout; the local wait is this plus 1 s (AWP-RPC-012). */
  readonly timeoutMs?: number;
}

/** What an agent can do: publish and call, as itself. */
export interface AgentRuntime {
  readonly id: AgentRef;
  publish(body: Body, topic: TopicId): void;
  send(body: Body, target: AgentRef, options?: SendOptions): Promise<Body>;
}

export type AgentFactory = (runtime: AgentRuntime) => Agent;

/** The mailbox key of an agent. */
export function agentKey(id: AgentRef): string {
  return `${id.type}/${id.key}`;
}
