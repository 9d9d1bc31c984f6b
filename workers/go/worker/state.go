package worker

import (
	"context"
	"fmt"
	"strings"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Type URL prefixes of control messages (AWP-CTL-002).
const (
	v1TypePrefix     = "type.googleapis.com/agentworker.v1."
	legacyTypePrefix = "type.googleapis.com/agents."
)

// controlMessageName returns the short message name of a control type URL,
// accepting the v1 and the legacy form (AWP-CTL-002).
func controlMessageName(typeURL string) string {
	for _, p := range []string{v1TypePrefix, legacyTypePrefix} {
		if strings.HasPrefix(typeURL, p) {
			return typeURL[len(p):]
		}
	}
	return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
}

// openControl opens the control channel (AWP-CONN-009) and serves state
// requests on it until the data channel's context ends.
func (w *Worker) openControl(ctx context.Context, conn *connection) error {
	stream, err := w.client.OpenControlChannel(ctx)
	if err != nil {
		return fmt.Errorf("open control channel: %w", err)
	}
	conn.setControl(stream)
	go func() {
		for {
			frame, err := stream.Recv()
			if err != nil {
				if !conn.isLost() && !w.stopping.Load() {
					w.log.Warn("control channel ended", "err", err)
				}
				return
			}
			reply := w.serveControl(frame)
			if reply == nil {
				continue
			}
			if err := conn.sendControl(reply); err != nil {
				w.log.Warn("cannot answer a control request", "rpc_id", frame.GetRpcId(), "err", err)
				return
			}
		}
	}()
	return nil
}

// serveControl answers SaveStateRequest and LoadStateRequest for local
// agents (AWP-CTL-001); failures carry ERROR_CODE_HANDLER_FAILED
// (AWP-CTL-005).
func (w *Worker) serveControl(frame *pb.OpenControlChannelResponse) *pb.OpenControlChannelRequest {
	name := controlMessageName(frame.GetRpcMessage().GetTypeUrl())
	var reply proto.Message
	switch name {
	case "SaveStateRequest":
		var req pb.SaveStateRequest
		state, err := w.saveState(&req, frame)
		if err != nil {
			reply = &pb.SaveStateResponse{Error: proto.String(err.Error()), ErrorCode: pb.ErrorCode_ERROR_CODE_HANDLER_FAILED}
		} else {
			reply = &pb.SaveStateResponse{State: state}
		}
	case "LoadStateRequest":
		var req pb.LoadStateRequest
		if err := w.loadState(&req, frame); err != nil {
			reply = &pb.LoadStateResponse{Error: proto.String(err.Error()), ErrorCode: pb.ErrorCode_ERROR_CODE_HANDLER_FAILED}
		} else {
			reply = &pb.LoadStateResponse{}
		}
	default:
		w.log.Warn("ignoring a control message", "type_url", frame.GetRpcMessage().GetTypeUrl())
		return nil
	}
	value, err := proto.Marshal(reply)
	if err != nil {
		w.log.Error("cannot encode a control response", "err", err)
		return nil
	}
	// Answer in the type-URL form the request used (AWP-CTL-002): on a legacy
	// host nothing translates.
	prefix := v1TypePrefix
	if strings.HasPrefix(frame.GetRpcMessage().GetTypeUrl(), legacyTypePrefix) {
		prefix = legacyTypePrefix
	}
	return &pb.OpenControlChannelRequest{
		RpcId:       frame.GetRpcId(),
		Destination: frame.GetRespondTo(),
		RpcMessage:  &anypb.Any{TypeUrl: prefix + string(reply.ProtoReflect().Descriptor().Name()), Value: value},
	}
}

func (w *Worker) stateful(agentID *pb.AgentId, destination string) (Stateful, error) {
	id := agentIDFromProto(agentID)
	if id.Type == "" {
		typ, key, ok := strings.Cut(strings.TrimPrefix(destination, "agentid="), "/")
		if !ok || !strings.HasPrefix(destination, "agentid=") {
			return nil, fmt.Errorf("state request names no agent (destination %q)", destination)
		}
		id = AgentID{Type: typ, Key: key}
	}
	a, err := w.agent(id)
	if err != nil {
		return nil, err
	}
	s, ok := a.(Stateful)
	if !ok {
		return nil, fmt.Errorf("agent %s has no state to save or load", id)
	}
	return s, nil
}

func (w *Worker) saveState(req *pb.SaveStateRequest, frame *pb.OpenControlChannelResponse) (string, error) {
	if err := proto.Unmarshal(frame.GetRpcMessage().GetValue(), req); err != nil {
		return "", fmt.Errorf("SaveStateRequest does not decode: %w", err)
	}
	s, err := w.stateful(req.GetAgentId(), frame.GetDestination())
	if err != nil {
		return "", err
	}
	return s.SaveState()
}

func (w *Worker) loadState(req *pb.LoadStateRequest, frame *pb.OpenControlChannelResponse) error {
	if err := proto.Unmarshal(frame.GetRpcMessage().GetValue(), req); err != nil {
		return fmt.Errorf("LoadStateRequest does not decode: %w", err)
	}
	s, err := w.stateful(req.GetAgentId(), frame.GetDestination())
	if err != nil {
		return err
	}
	return s.LoadState(req.GetState())
}
