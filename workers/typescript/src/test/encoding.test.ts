import { create, createRegistry, fromBinary } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { test } from "node:test";
import { PingSchema, PongSchema } from "../gen/conformance/v1/contract_pb.js";
import { ErrorCode, PayloadSchema } from "../gen/v1/agentworker_pb.js";
import {
  attributeString,
  buildCloudEvent,
  decodePayload,
  encodePayload,
  json,
  parseCloudEvent,
  proto,
  protoOf,
} from "../worker/encoding.js";
import { describeError, normalizeErrorCode, UnsupportedMessageError } from "../worker/errors.js";
import { childOf, parseTrace, traceEntries } from "../worker/trace.js";

const registry = createRegistry(PingSchema, PongSchema);
const ping = create(PingSchema, { text: "hi", seq: 7 });

test("JSON payload: data_type, content type and UTF-8 JSON text", () => {
  const payload = encodePayload(json("Ping", { text: "hé", seq: 1 }));
  assert.equal(payload.dataType, "Ping");
  assert.equal(payload.dataContentType, "application/json");
  assert.deepEqual(JSON.parse(new TextDecoder().decode(payload.data)), { text: "hé", seq: 1 });
  assert.deepEqual(decodePayload(payload, registry), json("Ping", { text: "hé", seq: 1 }));
});

test("protobuf payload: full name and a serialized Any (AWP-PUB-021)", () => {
  const payload = encodePayload(proto(PingSchema, ping));
  assert.equal(payload.dataType, "agentworker.conformance.v1.Ping");
  assert.equal(payload.dataContentType, "application/x-protobuf");
  const any = fromBinary(AnySchema, payload.data);
  assert.equal(any.typeUrl, "type.googleapis.com/agentworker.conformance.v1.Ping");
  assert.deepEqual(fromBinary(PingSchema, any.value), ping);
  const decoded = protoOf(decodePayload(payload, registry), PingSchema);
  assert.equal(decoded?.text, "hi");
  assert.equal(decoded?.seq, 7);
});

test("content types are matched without case or parameters", () => {
  const payload = create(PayloadSchema, {
    dataType: "Ping",
    dataContentType: "Application/JSON; charset=utf-8",
    data: new TextEncoder().encode('{"text":"a","seq":2}'),
  });
  assert.deepEqual(decodePayload(payload, registry), json("Ping", { text: "a", seq: 2 }));
});

test("what does not decode is an UnsupportedMessageError", () => {
  const unknownProto = encodePayload(proto(PongSchema, create(PongSchema)));
  assert.throws(
    () => decodePayload(unknownProto, createRegistry(PingSchema)),
    UnsupportedMessageError,
  );
  const badJson = create(PayloadSchema, {
    dataType: "Ping",
    dataContentType: "application/json",
    data: new TextEncoder().encode("{nope"),
  });
  assert.throws(() => decodePayload(badJson, registry), UnsupportedMessageError);
  const otherType = create(PayloadSchema, { dataType: "X", dataContentType: "text/plain" });
  assert.throws(() => decodePayload(otherType, registry), UnsupportedMessageError);
  assert.throws(() => decodePayload(undefined, registry), UnsupportedMessageError);
});

test("CloudEvent of a JSON publish carries the 9.1 attributes", () => {
  const event = buildCloudEvent({
    topic: { type: "chat", source: "s1" },
    body: json("Ping", { text: "x", seq: 0 }),
    sender: { type: "writer", key: "k" },
  });
  assert.match(event.id, /^[0-9a-f-]{36}$/);
  assert.equal(event.source, "s1");
  assert.equal(event.specVersion, "1.0");
  assert.equal(event.type, "chat");
  assert.equal(attributeString(event, "datacontenttype"), "application/json");
  assert.equal(attributeString(event, "dataschema"), "Ping");
  assert.equal(attributeString(event, "agagentsendertype"), "writer");
  assert.equal(attributeString(event, "agagentsenderkey"), "k");
  assert.equal(attributeString(event, "agmsgkind"), "publish");
  for (const name of Object.keys(event.attributes)) {
    assert.match(name, /^[a-z0-9]+$/);
    assert.equal(event.attributes[name]?.attr.case, "ceString");
  }
  assert.equal(event.data.case, "binaryData");
  const other = buildCloudEvent({ topic: { type: "chat", source: "s1" }, body: json("Ping", 1) });
  assert.notEqual(other.id, event.id);
  assert.equal(attributeString(other, "agagentsendertype"), undefined);
});

test("CloudEvent of a protobuf publish carries proto_data and round-trips", () => {
  const event = buildCloudEvent({
    topic: { type: "t", source: "s" },
    body: proto(PingSchema, ping),
    sender: { type: "a", key: "b" },
  });
  assert.equal(event.data.case, "protoData");
  assert.equal(attributeString(event, "datacontenttype"), "application/x-protobuf");
  assert.equal(attributeString(event, "dataschema"), "agentworker.conformance.v1.Ping");
  const received = parseCloudEvent(event, registry);
  assert.deepEqual(received.topic, { type: "t", source: "s" });
  assert.deepEqual(received.sender, { type: "a", key: "b" });
  assert.equal(received.id, event.id);
  assert.equal(protoOf(received.body, PingSchema)?.seq, 7);
});

test("a JSON event in text_data is accepted; unknown attributes are ignored", () => {
  const event = buildCloudEvent({ topic: { type: "t", source: "s" }, body: json("Ping", {}) });
  event.data = { case: "textData", value: '{"text":"t","seq":3}' };
  event.attributes["futureattr"] = event.attributes["agmsgkind"]!;
  assert.deepEqual(parseCloudEvent(event, registry).body, json("Ping", { text: "t", seq: 3 }));
});

test("error codes: legacy errors and unknown values read as HANDLER_FAILED (AWP-ERR-003, AWP-VER-002)", () => {
  assert.equal(normalizeErrorCode(0, ""), ErrorCode.UNSPECIFIED);
  assert.equal(normalizeErrorCode(0, "boom"), ErrorCode.HANDLER_FAILED);
  assert.equal(normalizeErrorCode(99, "future"), ErrorCode.HANDLER_FAILED);
  assert.equal(normalizeErrorCode(1, "x"), ErrorCode.UNKNOWN_TARGET);
});

test("trace context: valid traceparents parse, children keep the trace id (AWP-OBS-004)", () => {
  const parent = parseTrace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v");
  assert.ok(parent !== undefined);
  const child = childOf(parent);
  const [version, traceId, spanId, flags] = child.traceparent.split("-");
  assert.deepEqual([version, traceId, flags], ["00", "4bf92f3577b34da6a3ce929d0e0e4736", "01"]);
  assert.match(spanId ?? "", /^[0-9a-f]{16}$/);
  assert.notEqual(spanId, "00f067aa0ba902b7");
  assert.equal(child.tracestate, "k=v");
  assert.deepEqual(traceEntries(child), { traceparent: child.traceparent, tracestate: "k=v" });
  for (const bad of [
    undefined,
    "",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
  ]) {
    assert.equal(parseTrace(bad), undefined, bad);
  }
  const event = buildCloudEvent({
    topic: { type: "t", source: "s" },
    body: json("Ping", {}),
    trace: traceEntries(child),
  });
  assert.equal(attributeString(event, "traceparent"), child.traceparent);
  assert.equal(attributeString(event, "tracestate"), "k=v");
});

test("a failure always has a non-empty description (AWP-RPC-023)", () => {
  assert.equal(describeError(new Error("boom")), "boom");
  assert.equal(describeError(new TypeError("")), "TypeError");
  assert.equal(describeError("text"), "text");
  assert.notEqual(describeError(""), "");
  assert.notEqual(describeError(undefined), "");
});
