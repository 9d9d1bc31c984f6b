// Payload encodings and the CloudEvent envelope (spec sections 9.1, 9.2). Pure functions.
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type Message,
  type MessageShape,
  type Registry,
} from "@bufbuild/protobuf";
import { AnySchema, anyPack, anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import {
  CloudEventSchema,
  CloudEvent_CloudEventAttributeValueSchema,
  type CloudEvent,
  type CloudEvent_CloudEventAttributeValue,
} from "../gen/cloudevents/v1/cloudevents_pb.js";
import { PayloadSchema, type Payload } from "../gen/v1/agentworker_pb.js";
import { UnsupportedMessageError } from "./errors.js";

export const JSON_CONTENT_TYPE = "application/json";
export const PROTOBUF_CONTENT_TYPE = "application/x-protobuf";
/** The data_type of a handler reply that carries nothing (JSON null), as AutoGen sends. */
export const NONE_TYPE = "NoneType";
const TYPE_URL_PREFIX = "type.googleapis.com/";

/** A message in one of the two encodings: JSON (any value) or protobuf (a generated message). */
export type Body =
  | { readonly encoding: "json"; readonly dataType: string; readonly value: unknown }
  | {
      readonly encoding: "protobuf";
      readonly dataType: string;
      readonly schema: DescMessage;
      readonly message: Message;
    };

/** A topic: type (what the event is about) and source (its context, the receiving key). */
export interface TopicId {
  readonly type: string;
  readonly source: string;
}

/** Returns a JSON body: `dataType` names the type, `value` is serialized with JSON.stringify. */
export function json(dataType: string, value: unknown): Body {
  return { encoding: "json", dataType, value };
}

/** Returns a protobuf body; its data_type is the message's full name. */
export function proto<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Body {
  return { encoding: "protobuf", dataType: schema.typeName, schema, message };
}

/** Returns the body's message if it is a protobuf message of `schema`, else undefined. */
export function protoOf<Desc extends DescMessage>(
  body: Body,
  schema: Desc,
): MessageShape<Desc> | undefined {
  if (body.encoding === "protobuf" && body.message.$typeName === schema.typeName) {
    return body.message as MessageShape<Desc>;
  }
  return undefined;
}

/** Returns the body's value if it is JSON of type `dataType`, else undefined. */
export function jsonOf(body: Body, dataType: string): unknown {
  return body.encoding === "json" && body.dataType === dataType ? body.value : undefined;
}

function contentTypeOf(body: Body): string {
  return body.encoding === "json" ? JSON_CONTENT_TYPE : PROTOBUF_CONTENT_TYPE;
}

function packAny(body: Body & { encoding: "protobuf" }): Any {
  return anyPack(body.schema, body.message);
}

function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value) ?? "null");
}

/** Encodes a body as an RPC Payload (AWP-PUB-020, AWP-PUB-021). */
export function encodePayload(body: Body): Payload {
  const data =
    body.encoding === "json" ? jsonBytes(body.value) : toBinary(AnySchema, packAny(body));
  return create(PayloadSchema, {
    dataType: body.dataType,
    dataContentType: contentTypeOf(body),
    data,
  });
}

/** Compares a content type ignoring case and parameters ("application/json; charset=utf-8"). */
function isContentType(actual: string, expected: string): boolean {
  return actual.split(";")[0]?.trim().toLowerCase() === expected;
}

function decodeJson(dataType: string, bytes: Uint8Array): Body {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new UnsupportedMessageError(`${dataType}: data is not UTF-8 JSON (${String(error)})`);
  }
  return json(dataType, value);
}

function decodeAny(any: Any, registry: Registry): Body {
  let message: Message | undefined;
  try {
    message = anyUnpack(any, registry);
  } catch (error) {
    throw new UnsupportedMessageError(`${any.typeUrl}: does not decode (${String(error)})`);
  }
  const schema = message === undefined ? undefined : registry.getMessage(message.$typeName);
  if (message === undefined || schema === undefined) {
    throw new UnsupportedMessageError(
      `no handler knows protobuf type ${JSON.stringify(any.typeUrl)}`,
    );
  }
  return { encoding: "protobuf", dataType: schema.typeName, schema, message };
}

/** Decodes an RPC Payload; throws UnsupportedMessageError for what it cannot decode. */
export function decodePayload(payload: Payload | undefined, registry: Registry): Body {
  if (payload === undefined) {
    throw new UnsupportedMessageError("request has no payload");
  }
  if (isContentType(payload.dataContentType, JSON_CONTENT_TYPE)) {
    return decodeJson(payload.dataType, payload.data);
  }
  if (isContentType(payload.dataContentType, PROTOBUF_CONTENT_TYPE)) {
    let any: Any;
    try {
      any = fromBinary(AnySchema, payload.data);
    } catch (error) {
      throw new UnsupportedMessageError(
        `${payload.dataType}: data is not a protobuf Any (${String(error)})`,
      );
    }
    return decodeAny(any, registry);
  }
  throw new UnsupportedMessageError(
    `${payload.dataType}: unsupported content type ${JSON.stringify(payload.dataContentType)}`,
  );
}

function stringAttribute(value: string): CloudEvent_CloudEventAttributeValue {
  return create(CloudEvent_CloudEventAttributeValueSchema, { attr: { case: "ceString", value } });
}

/** What a worker publishes: the topic, the message and (when an agent publishes) the sender. */
export interface EventInput {
  readonly topic: TopicId;
  readonly body: Body;
  readonly sender?: { readonly type: string; readonly key: string } | undefined;
  readonly id?: string | undefined;
  /** traceparent / tracestate attributes (AWP-OBS-004). */
  readonly trace?: Record<string, string> | undefined;
}

/** Builds the CloudEvent of a publish (AWP-PUB-001). */
export function buildCloudEvent(input: EventInput): CloudEvent {
  const { topic, body, sender } = input;
  const attributes: Record<string, CloudEvent_CloudEventAttributeValue> = {
    datacontenttype: stringAttribute(contentTypeOf(body)),
    dataschema: stringAttribute(body.dataType),
    agmsgkind: stringAttribute("publish"),
  };
  if (sender !== undefined) {
    attributes["agagentsendertype"] = stringAttribute(sender.type);
    attributes["agagentsenderkey"] = stringAttribute(sender.key);
  }
  for (const [name, value] of Object.entries(input.trace ?? {})) {
    attributes[name] = stringAttribute(value);
  }
  return create(CloudEventSchema, {
    id: input.id ?? randomUUID(),
    source: topic.source,
    specVersion: "1.0",
    type: topic.type,
    attributes,
    data:
      body.encoding === "json"
        ? { case: "binaryData", value: jsonBytes(body.value) }
        : { case: "protoData", value: packAny(body) },
  });
}

/** Reads a string-valued attribute (ce_string, or a URI form), or undefined. */
export function attributeString(event: CloudEvent, name: string): string | undefined {
  const attr = event.attributes[name]?.attr;
  if (attr?.case === "ceString" || attr?.case === "ceUri" || attr?.case === "ceUriRef") {
    return attr.value;
  }
  return undefined;
}

/** An event as the worker delivers it to an agent. */
export interface ReceivedEvent {
  readonly id: string;
  readonly topic: TopicId;
  readonly body: Body;
  readonly sender: { type: string; key: string } | undefined;
}

/** Decodes a received CloudEvent by datacontenttype/dataschema (AWP-PUB-022). */
export function parseCloudEvent(event: CloudEvent, registry: Registry): ReceivedEvent {
  const senderType = attributeString(event, "agagentsendertype");
  const senderKey = attributeString(event, "agagentsenderkey");
  const sender =
    senderType !== undefined && senderType !== ""
      ? { type: senderType, key: senderKey ?? "" }
      : undefined;
  const topic = { type: event.type, source: event.source };
  const contentType = attributeString(event, "datacontenttype") ?? "";
  const dataType = attributeString(event, "dataschema") ?? "";
  let body: Body;
  if (event.data.case === "protoData") {
    body = decodeAny(event.data.value, registry);
  } else if (isContentType(contentType, JSON_CONTENT_TYPE) || contentType === "") {
    const data = event.data;
    const bytes =
      data.case === "binaryData"
        ? data.value
        : data.case === "textData"
          ? new TextEncoder().encode(data.value)
          : undefined;
    if (bytes === undefined) {
      throw new UnsupportedMessageError(`event ${event.id} has no data`);
    }
    body = decodeJson(dataType, bytes);
  } else {
    throw new UnsupportedMessageError(
      `event ${event.id}: unsupported content type ${JSON.stringify(contentType)}`,
    );
  }
  return { id: event.id, topic, body, sender };
}

/** Returns the full message name an Any's type URL names. */
export function typeNameOfUrl(typeUrl: string): string {
  return typeUrl.startsWith(TYPE_URL_PREFIX)
    ? typeUrl.slice(TYPE_URL_PREFIX.length)
    : typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
}
