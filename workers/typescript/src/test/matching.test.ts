import assert from "node:assert/strict";
import { test } from "node:test";
import {
  directSubscription,
  fromProto,
  matches,
  prefixSubscription,
  recipients,
  toProto,
  typeSubscription,
} from "../worker/matching.js";

test("a type subscription matches the exact topic type only", () => {
  const rule = typeSubscription("chat", "writer");
  assert.ok(matches(rule, "chat"));
  assert.ok(!matches(rule, "chat.x"));
  assert.ok(!matches(rule, "Chat"));
});

test("a prefix subscription matches byte-wise prefixes", () => {
  const rule = prefixSubscription("conformance.prefix.", "conformance");
  assert.ok(matches(rule, "conformance.prefix."));
  assert.ok(matches(rule, "conformance.prefix.a.b"));
  assert.ok(!matches(rule, "conformance.prefix"));
  assert.ok(matches(prefixSubscription("é", "x"), "éa"));
  assert.ok(!matches(prefixSubscription("e", "x"), "éa"));
});

test("direct addressing uses the prefix '<type>:' (AWP-SUB-011)", () => {
  const rule = directSubscription("conformance");
  assert.equal(rule.kind, "prefix");
  assert.equal(rule.topic, "conformance:");
  assert.ok(matches(rule, "conformance:anything"));
});

test("recipients are distinct, keyed by the topic source, without the sender (AWP-SUB-012)", () => {
  const rules = [
    typeSubscription("chat", "writer"),
    prefixSubscription("ch", "writer"),
    typeSubscription("chat", "editor"),
    typeSubscription("other", "critic"),
  ];
  assert.deepEqual(recipients(rules, { type: "chat", source: "s1" }), [
    { type: "writer", key: "s1" },
    { type: "editor", key: "s1" },
  ]);
  assert.deepEqual(
    recipients(rules, { type: "chat", source: "s1" }, { type: "writer", key: "s1" }),
    [{ type: "editor", key: "s1" }],
  );
  assert.deepEqual(recipients(rules, { type: "none", source: "s" }), []);
});

test("subscription ids are UUIDs and rules round-trip through the wire message", () => {
  const a = typeSubscription("t", "x");
  const b = prefixSubscription("p.", "x");
  assert.match(a.id, /^[0-9a-f-]{36}$/);
  assert.notEqual(a.id, b.id);
  assert.deepEqual(fromProto(toProto(a)), a);
  assert.deepEqual(fromProto(toProto(b)), b);
  assert.equal(toProto(b).subscription.case, "typePrefixSubscription");
});
