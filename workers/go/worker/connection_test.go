package worker

import (
	"testing"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

func requestFrame(id string, size int) *pb.OpenChannelRequest {
	return &pb.OpenChannelRequest{Message: &pb.OpenChannelRequest_Request{Request: &pb.RpcRequest{
		RequestId: id, Payload: &pb.Payload{Data: make([]byte, size)},
	}}}
}

func TestGatherBatchesWhatIsQueuedInOrder(t *testing.T) {
	c := newConnection(nil, func() {}, nil)
	for _, id := range []string{"2", "3", "4"} {
		c.out <- requestFrame(id, 0)
	}
	frame, held := c.gather(requestFrame("1", 0), 10, 1<<20)
	if held != nil {
		t.Fatalf("held %v", held)
	}
	var ids []string
	for _, f := range frame.GetBatch().GetMessages() {
		ids = append(ids, f.GetRequest().GetRequestId())
	}
	if len(ids) != 4 || ids[0] != "1" || ids[3] != "4" {
		t.Fatalf("batch ids = %v", ids)
	}
}

func TestGatherSendsALoneFrameUnbatched(t *testing.T) {
	c := newConnection(nil, func() {}, nil)
	first := requestFrame("1", 0)
	if frame, held := c.gather(first, 10, 1<<20); frame != first || held != nil {
		t.Fatalf("gather of one frame = %v, %v", frame, held)
	}
}

func TestGatherRespectsCountAndSizeLimits(t *testing.T) {
	c := newConnection(nil, func() {}, nil)
	for i := range 5 {
		c.out <- requestFrame(string(rune('b'+i)), 0)
	}
	frame, _ := c.gather(requestFrame("a", 0), 3, 1<<20)
	if n := len(frame.GetBatch().GetMessages()); n != 3 {
		t.Fatalf("batch of %d frames, limit 3", n)
	}
	if len(c.out) != 3 {
		t.Fatalf("%d frames left queued, want 3", len(c.out))
	}

	c = newConnection(nil, func() {}, nil)
	c.out <- requestFrame("b", 600)
	c.out <- requestFrame("c", 600)
	frame, held := c.gather(requestFrame("a", 600), 10, 1500)
	if n := len(frame.GetBatch().GetMessages()); n != 2 || held.GetRequest().GetRequestId() != "c" {
		t.Fatalf("batch of %d frames, held %v", n, held)
	}
	if proto.Size(frame) > 1500 {
		t.Fatalf("batch of %d bytes exceeds the limit", proto.Size(frame))
	}
}

func TestParseWelcome(t *testing.T) {
	if w, err := parseWelcome(metadata.MD{}); w != nil || err != nil {
		t.Fatalf("no welcome = %v, %v", w, err)
	}
	b, _ := proto.Marshal(&pb.ChannelWelcome{ProtocolVersion: 1, Capabilities: []pb.Capability{pb.Capability_CAPABILITY_BATCHING}})
	w, err := parseWelcome(metadata.Pairs(welcomeKey, string(b)))
	if err != nil || w.GetProtocolVersion() != 1 {
		t.Fatalf("welcome = %v, %v", w, err)
	}
	c := newConnection(nil, func() {}, w)
	if !c.inForce(pb.Capability_CAPABILITY_BATCHING) || c.inForce(pb.Capability_CAPABILITY_STATE) {
		t.Fatal("inForce disagrees with the welcome")
	}
	if newConnection(nil, func() {}, nil).inForce(pb.Capability_CAPABILITY_BATCHING) {
		t.Fatal("a capability is in force with a legacy host")
	}
	if _, err := parseWelcome(metadata.Pairs(welcomeKey, "\xff\xff")); err == nil {
		t.Fatal("a broken welcome decodes")
	}
}

func TestControlMessageName(t *testing.T) {
	cases := map[string]string{
		"type.googleapis.com/agentworker.v1.SaveStateRequest": "SaveStateRequest",
		"type.googleapis.com/agents.LoadStateRequest":         "LoadStateRequest",
		"example.com/other.pkg.SaveStateRequest":              "SaveStateRequest",
	}
	for url, want := range cases {
		if got := controlMessageName(url); got != want {
			t.Errorf("controlMessageName(%q) = %q, want %q", url, got, want)
		}
	}
}
