package worker

import (
	"errors"
	"testing"

	cpb "github.com/agentworker/agentworker/gen/go/agentworker/conformance/v1"
	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestJSONPayloadRoundTrip(t *testing.T) {
	type ping struct {
		Text string `json:"text"`
		Seq  int    `json:"seq"`
	}
	p, err := JSON("Ping", ping{Text: "hi", Seq: 3})
	if err != nil {
		t.Fatal(err)
	}
	if p.DataType != "Ping" || p.ContentType != "application/json" || string(p.Data) != `{"text":"hi","seq":3}` {
		t.Fatalf("unexpected payload %+v (%s)", p, p.Data)
	}
	if !p.IsJSON("Ping") || p.IsJSON("Pong") || p.IsProto(&cpb.Ping{}) {
		t.Fatal("IsJSON/IsProto disagree with the payload")
	}
	var back ping
	if err := p.DecodeJSON(&back); err != nil || back != (ping{"hi", 3}) {
		t.Fatalf("DecodeJSON = %+v, %v", back, err)
	}
}

func TestProtoPayloadIsASerializedAny(t *testing.T) {
	p, err := Proto(&cpb.Ping{Text: "x", Seq: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.DataType != "agentworker.conformance.v1.Ping" || p.ContentType != "application/x-protobuf" {
		t.Fatalf("unexpected payload header %q %q", p.DataType, p.ContentType)
	}
	var a anypb.Any
	if err := proto.Unmarshal(p.Data, &a); err != nil {
		t.Fatal(err)
	}
	if a.TypeUrl != "type.googleapis.com/agentworker.conformance.v1.Ping" {
		t.Fatalf("type_url = %q", a.TypeUrl)
	}
	var ping cpb.Ping
	if err := p.DecodeProto(&ping); err != nil || ping.Text != "x" || ping.Seq != 2 {
		t.Fatalf("DecodeProto = %v, %v", &ping, err)
	}
	if !p.IsProto(&cpb.Ping{}) || p.IsProto(&cpb.Pong{}) || p.IsJSON("Ping") {
		t.Fatal("IsProto/IsJSON disagree with the payload")
	}
}

func TestDecodeFailuresAreUnsupportedMessages(t *testing.T) {
	ping, _ := Proto(&cpb.Ping{})
	cases := map[string]error{
		"json into proto":    Payload{DataType: "Ping", ContentType: ContentTypeJSON, Data: []byte(`{}`)}.DecodeProto(&cpb.Ping{}),
		"wrong proto type":   ping.DecodeProto(&cpb.Pong{}),
		"not an Any":         Payload{DataType: "agentworker.conformance.v1.Ping", ContentType: ContentTypeProtobuf, Data: []byte{0xff}}.DecodeProto(&cpb.Ping{}),
		"proto into json":    ping.DecodeJSON(&struct{}{}),
		"broken json":        Payload{DataType: "Ping", ContentType: ContentTypeJSON, Data: []byte(`{`)}.DecodeJSON(&struct{}{}),
		"unsupported helper": Unsupported(ping),
	}
	for name, err := range cases {
		if !errors.Is(err, ErrUnsupportedMessage) {
			t.Errorf("%s: %v does not match ErrUnsupportedMessage", name, err)
		}
	}
}

func TestContentTypeIgnoresCaseAndParameters(t *testing.T) {
	p := Payload{DataType: "Ping", ContentType: "Application/JSON; charset=utf-8", Data: []byte(`{}`)}
	if !p.IsJSON("Ping") {
		t.Fatal("a JSON content type with parameters is not recognized")
	}
}

func TestNonePayload(t *testing.T) {
	p := nonePayload()
	if p.DataType != "NoneType" || p.ContentType != ContentTypeJSON || string(p.Data) != "null" {
		t.Fatalf("nonePayload = %+v", p)
	}
	if got := payloadFromProto(p.proto()); got.DataType != p.DataType || string(got.Data) != "null" {
		t.Fatalf("proto round trip = %+v", got)
	}
	if payloadFromProto((*pb.Payload)(nil)).DataType != "" {
		t.Fatal("a nil payload is not empty")
	}
}
