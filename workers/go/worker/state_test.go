package worker

import (
	"context"
	"errors"
	"testing"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// memo remembers its state; plain has none.
type memo struct{ echo }

func (m *memo) SaveState() (string, error) { return m.key, nil }
func (m *memo) LoadState(s string) error {
	if s == "bad" {
		return errors.New("cannot load bad")
	}
	m.key = s
	return nil
}

func controlFrame(t *testing.T, typeURL string, m proto.Message, destination string) *pb.OpenControlChannelResponse {
	t.Helper()
	value, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.OpenControlChannelResponse{
		RpcId: "7", Destination: destination, RespondTo: proto.String("clientid=asker"),
		RpcMessage: &anypb.Any{TypeUrl: typeURL, Value: value},
	}
}

func TestServeControl(t *testing.T) {
	w, err := New(Config{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = w.Register(ctx, "memo", func(id AgentID) (Agent, error) { return &memo{echo{id.Key}}, nil })
	_ = w.Register(ctx, "plain", func(id AgentID) (Agent, error) { return &echo{id.Key}, nil })

	// A legacy type URL, the agent named only by the destination.
	reply := w.serveControl(controlFrame(t, legacyTypePrefix+"SaveStateRequest", &pb.SaveStateRequest{}, "agentid=memo/k1"))
	if reply.GetRpcId() != "7" || reply.GetDestination() != "clientid=asker" ||
		reply.GetRpcMessage().GetTypeUrl() != legacyTypePrefix+"SaveStateResponse" {
		t.Fatalf("reply = %v", reply)
	}
	var saved pb.SaveStateResponse
	if err := proto.Unmarshal(reply.GetRpcMessage().GetValue(), &saved); err != nil || saved.GetState() != "k1" || saved.Error != nil {
		t.Fatalf("saved = %v (%v)", &saved, err)
	}

	load := &pb.LoadStateRequest{AgentId: &pb.AgentId{Type: "memo", Key: "k2"}, State: "restored"}
	reply = w.serveControl(controlFrame(t, v1TypePrefix+"LoadStateRequest", load, "agentid=memo/k2"))
	var loaded pb.LoadStateResponse
	if err := reply.GetRpcMessage().UnmarshalTo(&loaded); err != nil || loaded.Error != nil {
		t.Fatalf("loaded = %v (%v)", &loaded, err)
	}
	a, _ := w.agent(AgentID{"memo", "k2"})
	if a.(*memo).key != "restored" {
		t.Fatal("the state was not loaded into the agent")
	}

	failures := []*pb.OpenControlChannelResponse{
		controlFrame(t, v1TypePrefix+"SaveStateRequest", &pb.SaveStateRequest{AgentId: &pb.AgentId{Type: "plain", Key: "k"}}, ""),
		controlFrame(t, v1TypePrefix+"SaveStateRequest", &pb.SaveStateRequest{AgentId: &pb.AgentId{Type: "nobody", Key: "k"}}, ""),
		controlFrame(t, v1TypePrefix+"SaveStateRequest", &pb.SaveStateRequest{}, "clientid=oops"),
		controlFrame(t, v1TypePrefix+"LoadStateRequest", &pb.LoadStateRequest{AgentId: &pb.AgentId{Type: "memo", Key: "k"}, State: "bad"}, ""),
	}
	for i, f := range failures {
		reply := w.serveControl(f)
		var code pb.ErrorCode
		var text string
		if controlMessageName(reply.GetRpcMessage().GetTypeUrl()) == "SaveStateResponse" {
			var r pb.SaveStateResponse
			_ = reply.GetRpcMessage().UnmarshalTo(&r)
			code, text = r.GetErrorCode(), r.GetError()
		} else {
			var r pb.LoadStateResponse
			_ = reply.GetRpcMessage().UnmarshalTo(&r)
			code, text = r.GetErrorCode(), r.GetError()
		}
		if code != pb.ErrorCode_ERROR_CODE_HANDLER_FAILED || text == "" {
			t.Errorf("failure %d answered %v %q", i, code, text)
		}
	}
	if w.serveControl(controlFrame(t, v1TypePrefix+"SaveStateResponse", &pb.SaveStateResponse{}, "")) != nil {
		t.Error("an unexpected control message was answered")
	}
}
