package worker

import (
	"regexp"
	"testing"

	cepb "github.com/agentworker/agentworker/gen/go/agentworker/cloudevents/v1"
	cpb "github.com/agentworker/agentworker/gen/go/agentworker/conformance/v1"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestBuildCloudEventJSON(t *testing.T) {
	p, _ := JSON("Ping", map[string]any{"text": "a", "seq": 1})
	sender := AgentID{Type: "conformance", Key: "k"}
	ev, err := buildCloudEvent(p, TopicID{Type: "t", Source: "s"}, &sender)
	if err != nil {
		t.Fatal(err)
	}
	if !uuidPattern.MatchString(ev.Id) || ev.Source != "s" || ev.Type != "t" || ev.SpecVersion != "1.0" {
		t.Fatalf("envelope = %v", ev)
	}
	want := map[string]string{
		"datacontenttype":   "application/json",
		"dataschema":        "Ping",
		"agagentsendertype": "conformance",
		"agagentsenderkey":  "k",
		"agmsgkind":         "publish",
	}
	if len(ev.Attributes) != len(want) {
		t.Fatalf("attributes = %v", ev.Attributes)
	}
	lower := regexp.MustCompile(`^[a-z0-9]+$`)
	for name, value := range want {
		if !lower.MatchString(name) {
			t.Fatalf("attribute name %q is not lower-case a-z0-9", name)
		}
		if got := ev.Attributes[name].GetCeString(); got != value {
			t.Errorf("attribute %s = %q, want %q", name, got, value)
		}
	}
	if string(ev.GetBinaryData()) != string(p.Data) {
		t.Fatalf("binary_data = %q", ev.GetBinaryData())
	}
	other, _ := buildCloudEvent(p, TopicID{Type: "t", Source: "s"}, nil)
	if other.Id == ev.Id {
		t.Fatal("two events share an id")
	}
	if _, ok := other.Attributes["agagentsendertype"]; ok {
		t.Fatal("an event without sender names one")
	}
}

func TestBuildCloudEventProtobuf(t *testing.T) {
	p, _ := Proto(&cpb.Ping{Text: "b", Seq: 4})
	ev, err := buildCloudEvent(p, TopicID{Type: "t", Source: "s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Attributes["datacontenttype"].GetCeString() != "application/x-protobuf" ||
		ev.Attributes["dataschema"].GetCeString() != "agentworker.conformance.v1.Ping" {
		t.Fatalf("attributes = %v", ev.Attributes)
	}
	var ping cpb.Ping
	if err := ev.GetProtoData().UnmarshalTo(&ping); err != nil || ping.Seq != 4 {
		t.Fatalf("proto_data = %v (%v)", ev.GetProtoData(), err)
	}
}

func TestBuildCloudEventRejectsBadInput(t *testing.T) {
	p, _ := JSON("Ping", 1)
	if _, err := buildCloudEvent(p, TopicID{Source: "s"}, nil); err == nil {
		t.Error("empty topic type accepted")
	}
	if _, err := buildCloudEvent(Payload{DataType: "x", ContentType: "text/plain"}, TopicID{Type: "t"}, nil); err == nil {
		t.Error("unknown content type accepted")
	}
}

func TestParseCloudEventRoundTrip(t *testing.T) {
	for _, p := range []Payload{must(JSON("Ping", map[string]int{"seq": 1})), must(Proto(&cpb.Ping{Seq: 2}))} {
		sender := AgentID{Type: "a", Key: "b"}
		ev, _ := buildCloudEvent(p, TopicID{Type: "t", Source: "s"}, &sender)
		got, err := parseCloudEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != ev.Id || got.Topic != (TopicID{"t", "s"}) || *got.Sender != sender {
			t.Fatalf("parsed = %+v", got)
		}
		if got.Payload.DataType != p.DataType || got.Payload.ContentType != p.ContentType {
			t.Fatalf("payload = %+v, want %+v", got.Payload, p)
		}
		if p.ContentType == ContentTypeProtobuf {
			var ping cpb.Ping
			if err := got.Payload.DecodeProto(&ping); err != nil || ping.Seq != 2 {
				t.Fatalf("decoded %v, %v", &ping, err)
			}
		} else if string(got.Payload.Data) != string(p.Data) {
			t.Fatalf("data = %q", got.Payload.Data)
		}
	}
}

func TestParseCloudEventLenientForms(t *testing.T) {
	uri := func(v string) *cepb.CloudEvent_CloudEventAttributeValue {
		return &cepb.CloudEvent_CloudEventAttributeValue{Attr: &cepb.CloudEvent_CloudEventAttributeValue_CeUri{CeUri: v}}
	}
	// text_data, a schema given as ce_uri, no content type: JSON.
	ev := &cepb.CloudEvent{
		Id: "1", Type: "t", Source: "s", SpecVersion: "1.0",
		Attributes: map[string]*cepb.CloudEvent_CloudEventAttributeValue{"dataschema": uri("Ping"), "extra": ceString("x")},
		Data:       &cepb.CloudEvent_TextData{TextData: `{"seq":1}`},
	}
	got, err := parseCloudEvent(ev)
	if err != nil || !got.Payload.IsJSON("Ping") || string(got.Payload.Data) != `{"seq":1}` || got.Sender != nil {
		t.Fatalf("text_data event = %+v, %v", got, err)
	}
	// proto_data without dataschema: the type URL names the message.
	a, _ := anypb.New(&cpb.Pong{AgentKey: "k"})
	ev = &cepb.CloudEvent{Id: "2", Type: "t", Data: &cepb.CloudEvent_ProtoData{ProtoData: a}}
	got, err = parseCloudEvent(ev)
	if err != nil || !got.Payload.IsProto(&cpb.Pong{}) {
		t.Fatalf("proto_data event = %+v, %v", got, err)
	}
}

func TestParseCloudEventFailures(t *testing.T) {
	attrs := func(ct string) map[string]*cepb.CloudEvent_CloudEventAttributeValue {
		return map[string]*cepb.CloudEvent_CloudEventAttributeValue{"datacontenttype": ceString(ct), "dataschema": ceString("X")}
	}
	cases := map[string]*cepb.CloudEvent{
		"no data":              {Id: "1", Type: "t", Attributes: attrs("application/json")},
		"unknown content type": {Id: "2", Type: "t", Attributes: attrs("text/csv"), Data: &cepb.CloudEvent_BinaryData{BinaryData: []byte("a")}},
		"no schema":            {Id: "3", Type: "t", Data: &cepb.CloudEvent_BinaryData{BinaryData: []byte("1")}},
		"proto as json":        {Id: "4", Type: "t", Attributes: attrs("application/json"), Data: &cepb.CloudEvent_ProtoData{ProtoData: &anypb.Any{}}},
	}
	for name, ev := range cases {
		if _, err := parseCloudEvent(ev); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func must(p Payload, err error) Payload {
	if err != nil {
		panic(err)
	}
	return p
}
