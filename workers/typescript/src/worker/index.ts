// A small agentworker v1 worker library on the generated TypeScript stubs.
export { configFromEnv, ConfigError, isLoopback, validateConfig } from "./config.js";
export type { TlsConfig, WorkerConfig } from "./config.js";
export {
  buildCloudEvent,
  decodePayload,
  encodePayload,
  json,
  jsonOf,
  parseCloudEvent,
  proto,
  protoOf,
  JSON_CONTENT_TYPE,
  NONE_TYPE,
  PROTOBUF_CONTENT_TYPE,
} from "./encoding.js";
export type { Body, ReceivedEvent, TopicId } from "./encoding.js";
export { errorCodeName, normalizeErrorCode, RpcError, UnsupportedMessageError } from "./errors.js";
export { createLogger } from "./log.js";
export type { Logger } from "./log.js";
export {
  directSubscription,
  matches,
  prefixSubscription,
  recipients,
  typeSubscription,
} from "./matching.js";
export type { SubscriptionRule } from "./matching.js";
export type {
  Agent,
  AgentFactory,
  AgentRef,
  AgentRuntime,
  MessageContext,
  SendOptions,
} from "./agent.js";
export { backoffMs, IMPLEMENTATION, Worker } from "./worker.js";
export type { WorkerOptions } from "./worker.js";
export { runWorker, withDeadline } from "./process.js";
export { sleep } from "./timers.js";
export { currentTrace, parseTrace } from "./trace.js";
export type { TraceContext } from "./trace.js";
