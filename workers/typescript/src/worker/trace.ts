// W3C trace context (AWP-OBS-004): the context of the running handler and its propagation.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";

/** A W3C trace context: `traceparent` and, when present, `tracestate`. */
export interface TraceContext {
  readonly traceparent: string;
  readonly tracestate: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const storage = new AsyncLocalStorage<TraceContext | undefined>();

/** Parses a received traceparent; an invalid one is ignored (undefined). */
export function parseTrace(
  traceparent: string | undefined,
  tracestate = "",
): TraceContext | undefined {
  const match = TRACEPARENT.exec(traceparent?.trim().toLowerCase() ?? "");
  if (match === null || match[1] === "ff" || /^0+$/.test(match[2] ?? "")) return undefined;
  if (/^0+$/.test(match[3] ?? "") || (match[1] === "00" && match[5] !== undefined)) {
    return undefined;
  }
  return { traceparent: match[0], tracestate: tracestate.trim() };
}

/** Returns the context of work whose parent is `parent`: the same trace, a new span id. */
export function childOf(parent: TraceContext): TraceContext {
  const [version, traceId, , flags] = parent.traceparent.split("-");
  const spanId = randomBytes(8).toString("hex");
  return { traceparent: `${version}-${traceId}-${spanId}-${flags}`, tracestate: parent.tracestate };
}

/** Returns the trace context of the handler running now, if any. */
export function currentTrace(): TraceContext | undefined {
  return storage.getStore();
}

/** Runs `work` with `context` as the current trace context (undefined: none). */
export function withTrace<T>(context: TraceContext | undefined, work: () => T): T {
  return storage.run(context, work);
}

/** Returns the carrier entries of a context: traceparent, and tracestate when not empty. */
export function traceEntries(context: TraceContext): Record<string, string> {
  const entries: Record<string, string> = { traceparent: context.traceparent };
  if (context.tracestate !== "") entries["tracestate"] = context.tracestate;
  return entries;
}
