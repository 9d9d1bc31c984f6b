package worker

import (
	"fmt"
	"strings"

	cepb "github.com/agentworker/agentworker/gen/go/agentworker/cloudevents/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// CloudEvent attribute names of spec 9.1.
const (
	attrContentType = "datacontenttype"
	attrSchema      = "dataschema"
	attrSenderType  = "agagentsendertype"
	attrSenderKey   = "agagentsenderkey"
	attrKind        = "agmsgkind"
)

// Event is a received CloudEvent as a handler sees it.
type Event struct {
	ID      string
	Topic   TopicID
	Sender  *AgentID // nil when the event names no sender
	Payload Payload
}

func ceString(v string) *cepb.CloudEvent_CloudEventAttributeValue {
	return &cepb.CloudEvent_CloudEventAttributeValue{
		Attr: &cepb.CloudEvent_CloudEventAttributeValue_CeString{CeString: v},
	}
}

// buildCloudEvent builds the envelope of AWP-PUB-001: JSON in binary_data,
// protobuf in proto_data as an Any.
func buildCloudEvent(p Payload, topic TopicID, sender *AgentID) (*cepb.CloudEvent, error) {
	if topic.Type == "" {
		return nil, fmt.Errorf("publish: empty topic type")
	}
	ev := &cepb.CloudEvent{
		Id:          newUUID(),
		Source:      topic.Source,
		SpecVersion: "1.0",
		Type:        topic.Type,
		Attributes: map[string]*cepb.CloudEvent_CloudEventAttributeValue{
			attrContentType: ceString(p.ContentType),
			attrSchema:      ceString(p.DataType),
			attrKind:        ceString("publish"),
		},
	}
	if sender != nil {
		ev.Attributes[attrSenderType] = ceString(sender.Type)
		ev.Attributes[attrSenderKey] = ceString(sender.Key)
	}
	switch {
	case isContentType(p.ContentType, ContentTypeProtobuf):
		a := &anypb.Any{}
		if err := proto.Unmarshal(p.Data, a); err != nil {
			return nil, fmt.Errorf("publish: protobuf payload is not a serialized Any: %w", err)
		}
		ev.Data = &cepb.CloudEvent_ProtoData{ProtoData: a}
	case isContentType(p.ContentType, ContentTypeJSON):
		ev.Data = &cepb.CloudEvent_BinaryData{BinaryData: p.Data}
	default:
		return nil, fmt.Errorf("publish: unknown content type %q", p.ContentType)
	}
	return ev, nil
}

// attrString reads a string-like attribute, whichever string case of
// CloudEventAttributeValue carries it (AWP-PUB-002).
func attrString(ev *cepb.CloudEvent, name string) string {
	v := ev.GetAttributes()[name]
	switch a := v.GetAttr().(type) {
	case *cepb.CloudEvent_CloudEventAttributeValue_CeString:
		return a.CeString
	case *cepb.CloudEvent_CloudEventAttributeValue_CeUri:
		return a.CeUri
	case *cepb.CloudEvent_CloudEventAttributeValue_CeUriRef:
		return a.CeUriRef
	}
	return ""
}

// parseCloudEvent decodes a received event by datacontenttype and dataschema
// (AWP-PUB-022): JSON from binary_data or text_data, protobuf from
// proto_data.
func parseCloudEvent(ev *cepb.CloudEvent) (Event, error) {
	out := Event{ID: ev.GetId(), Topic: TopicID{Type: ev.GetType(), Source: ev.GetSource()}}
	if t := attrString(ev, attrSenderType); t != "" {
		out.Sender = &AgentID{Type: t, Key: attrString(ev, attrSenderKey)}
	}
	contentType := attrString(ev, attrContentType)
	schema := attrString(ev, attrSchema)
	switch d := ev.GetData().(type) {
	case *cepb.CloudEvent_ProtoData:
		if contentType != "" && !isContentType(contentType, ContentTypeProtobuf) {
			return out, fmt.Errorf("event %s: proto_data with content type %q", ev.GetId(), contentType)
		}
		if schema == "" {
			schema = d.ProtoData.GetTypeUrl()[strings.LastIndexByte(d.ProtoData.GetTypeUrl(), '/')+1:]
		}
		data, err := proto.Marshal(d.ProtoData)
		if err != nil {
			return out, fmt.Errorf("event %s: %w", ev.GetId(), err)
		}
		out.Payload = Payload{DataType: schema, ContentType: ContentTypeProtobuf, Data: data}
	case *cepb.CloudEvent_BinaryData, *cepb.CloudEvent_TextData:
		if contentType == "" {
			contentType = ContentTypeJSON
		}
		if !isContentType(contentType, ContentTypeJSON) {
			return out, fmt.Errorf("event %s: unknown content type %q", ev.GetId(), contentType)
		}
		data := ev.GetBinaryData()
		if t, ok := d.(*cepb.CloudEvent_TextData); ok {
			data = []byte(t.TextData)
		}
		out.Payload = Payload{DataType: schema, ContentType: ContentTypeJSON, Data: data}
	default:
		return out, fmt.Errorf("event %s carries no data", ev.GetId())
	}
	if out.Payload.DataType == "" {
		return out, fmt.Errorf("event %s names no dataschema", ev.GetId())
	}
	return out, nil
}
