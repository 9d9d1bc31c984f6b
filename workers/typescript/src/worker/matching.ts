// Subscriptions and local topic matching (spec section 8). Pure functions.
import { create } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { SubscriptionSchema, type AgentId, type Subscription } from "../gen/v1/agentworker_pb.js";
import type { TopicId } from "./encoding.js";

/** A subscription rule: exact topic type, or topic type prefix, mapped to an agent type. */
export interface SubscriptionRule {
  readonly id: string;
  readonly kind: "type" | "prefix";
  /** The exact topic type (kind "type") or the prefix (kind "prefix"). */
  readonly topic: string;
  readonly agentType: string;
}

/** Returns a TypeSubscription rule with a fresh UUID id (AWP-SUB-003). */
export function typeSubscription(topicType: string, agentType: string): SubscriptionRule {
  return { id: randomUUID(), kind: "type", topic: topicType, agentType };
}

/** Returns a TypePrefixSubscription rule with a fresh UUID id. */
export function prefixSubscription(prefix: string, agentType: string): SubscriptionRule {
  return { id: randomUUID(), kind: "prefix", topic: prefix, agentType };
}

/** Returns the direct-addressing subscription of an agent type, prefix "<type>:" (AWP-SUB-011). */
export function directSubscription(agentType: string): SubscriptionRule {
  return prefixSubscription(`${agentType}:`, agentType);
}

/** Converts a rule to its wire message. */
export function toProto(rule: SubscriptionRule): Subscription {
  const agentType = rule.agentType;
  return create(SubscriptionSchema, {
    id: rule.id,
    subscription:
      rule.kind === "type"
        ? { case: "typeSubscription", value: { topicType: rule.topic, agentType } }
        : { case: "typePrefixSubscription", value: { topicTypePrefix: rule.topic, agentType } },
  });
}

/** Converts a wire subscription to a rule, or undefined when its rule case is unknown. */
export function fromProto(subscription: Subscription): SubscriptionRule | undefined {
  const rule = subscription.subscription;
  switch (rule.case) {
    case "typeSubscription":
      return {
        id: subscription.id,
        kind: "type",
        topic: rule.value.topicType,
        agentType: rule.value.agentType,
      };
    case "typePrefixSubscription":
      return {
        id: subscription.id,
        kind: "prefix",
        topic: rule.value.topicTypePrefix,
        agentType: rule.value.agentType,
      };
    default:
      return undefined;
  }
}

/** Compares strings by their UTF-8 bytes: does `value` start with `prefix`? */
function startsWithBytes(value: string, prefix: string): boolean {
  const v = Buffer.from(value, "utf8");
  const p = Buffer.from(prefix, "utf8");
  return v.length >= p.length && v.subarray(0, p.length).equals(p);
}

/** Does the rule match a topic type (AWP-SUB-010)? */
export function matches(rule: SubscriptionRule, topicType: string): boolean {
  return rule.kind === "type" ? topicType === rule.topic : startsWithBytes(topicType, rule.topic);
}

/**
 * Returns each distinct agent a topic addresses under `rules` (key = topic source), in rule
 * order, leaving out the event's sender (AWP-SUB-012).
 */
export function recipients(
  rules: Iterable<SubscriptionRule>,
  topic: TopicId,
  sender?: { type: string; key: string },
): Array<Pick<AgentId, "type" | "key">> {
  const seen = new Set<string>();
  const found: Array<Pick<AgentId, "type" | "key">> = [];
  for (const rule of rules) {
    if (!matches(rule, topic.type)) {
      continue;
    }
    const id = { type: rule.agentType, key: topic.source };
    if (sender !== undefined && sender.type === id.type && sender.key === id.key) {
      continue;
    }
    const name = agentIdString(id);
    if (!seen.has(name)) {
      seen.add(name);
      found.push(id);
    }
  }
  return found;
}

/** Returns "type/key", the form control-channel destinations use. */
export function agentIdString(id: { type: string; key: string }): string {
  return `${id.type}/${id.key}`;
}
