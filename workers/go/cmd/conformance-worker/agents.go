package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	cpb "github.com/agentworker/agentworker/gen/go/agentworker/conformance/v1"
	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"github.com/agentworker/agentworker/workers/go/worker"
)

// jsonPing is the JSON encoding of Ping and Pong (AWP-CNF-004).
type jsonPing struct {
	Text     string    `json:"text"`
	Seq      jsonInt32 `json:"seq"`
	AgentKey string    `json:"agent_key,omitempty"`
}

// jsonInt32 reads a JSON number with an integral int32 value, also when it is
// written with a fraction or exponent such as 7.0 (AWP-CNF-024).
type jsonInt32 int32

func (n *jsonInt32) UnmarshalJSON(data []byte) error {
	var f float64
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	if f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return fmt.Errorf("seq %s is not an int32 integer", data)
	}
	*n = jsonInt32(f)
	return nil
}

// encode encodes a Ping (name "Ping") or a Pong (name "Pong") held in m.
func encode(enc cpb.Encoding, name string, m *cpb.Pong) (worker.Payload, error) {
	switch {
	case enc != cpb.Encoding_ENCODING_PROTOBUF:
		return worker.JSON(name, jsonPing{Text: m.Text, Seq: jsonInt32(m.Seq), AgentKey: m.AgentKey})
	case name == "Ping":
		return worker.Proto(&cpb.Ping{Text: m.Text, Seq: m.Seq})
	}
	return worker.Proto(m)
}

// decode decodes a Ping (name "Ping") or a Pong (name "Pong") in either
// encoding; any other payload yields an unsupported-message error.
func decode(p worker.Payload, name string) (*cpb.Pong, cpb.Encoding, error) {
	if p.IsJSON(name) {
		var v jsonPing
		err := p.DecodeJSON(&v)
		return &cpb.Pong{Text: v.Text, Seq: int32(v.Seq), AgentKey: v.AgentKey}, cpb.Encoding_ENCODING_JSON, err
	}
	if name == "Ping" {
		var ping cpb.Ping
		err := p.DecodeProto(&ping)
		return &cpb.Pong{Text: ping.Text, Seq: ping.Seq}, cpb.Encoding_ENCODING_PROTOBUF, err
	}
	var pong cpb.Pong
	err := p.DecodeProto(&pong)
	return &pong, cpb.Encoding_ENCODING_PROTOBUF, err
}

// stallOf returns the stall_ms of a protobuf Ping, 0 for anything else.
func stallOf(p worker.Payload) uint32 {
	var ping cpb.Ping
	if p.IsJSON("Ping") || p.DecodeProto(&ping) != nil {
		return 0
	}
	return ping.GetStallMs()
}

// agent is the conformance agent (AWP-CNF-002 .. AWP-CNF-015).
type agent struct {
	key   string
	mu    sync.Mutex
	value string
}

func (a *agent) OnRequest(ctx context.Context, mc *worker.Context, msg worker.Payload) (worker.Payload, error) {
	if msg.IsProto(&cpb.Command{}) {
		var c cpb.Command
		if err := msg.DecodeProto(&c); err != nil {
			return worker.Payload{}, err
		}
		result, err := a.command(ctx, mc, &c)
		if err != nil {
			return worker.Payload{}, err
		}
		return worker.Proto(result)
	}
	ping, enc, err := decode(msg, "Ping")
	if err != nil {
		return worker.Payload{}, err
	}
	return encode(enc, "Pong", &cpb.Pong{Text: ping.Text, Seq: ping.Seq, AgentKey: a.key})
}

func (a *agent) OnEvent(ctx context.Context, mc *worker.Context, ev worker.Event) error {
	ping, enc, err := decode(ev.Payload, "Ping")
	if err != nil {
		return err
	}
	if ms := stallOf(ev.Payload); ms > 0 {
		// AWP-CNF-030: the agent's next message waits behind this stall
		// (AWP-CONN-040).
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	receipt := &cpb.EventReceipt{
		AgentKey: a.key, TopicType: ev.Topic.Type, TopicSource: ev.Topic.Source,
		Text: ping.Text, Seq: ping.Seq, Encoding: enc, EventId: ev.ID,
	}
	if ev.Sender != nil {
		receipt.Sender = &pb.AgentId{Type: ev.Sender.Type, Key: ev.Sender.Key}
	}
	p, err := worker.Proto(receipt)
	if err != nil {
		return err
	}
	return mc.Publish(ctx, worker.TopicID{Type: receiptsTopic, Source: a.key}, p)
}

// command runs c, failing it when it passes its deadline (AWP-CNF-015):
// every action gives up when ctx ends.
func (a *agent) command(ctx context.Context, mc *worker.Context, c *cpb.Command) (*cpb.CommandResult, error) {
	limited := ctx
	if c.DeadlineMs > 0 { // 0 breaks the contract; run without a limit of our own
		var cancel context.CancelFunc
		limited, cancel = context.WithTimeout(ctx, time.Duration(c.DeadlineMs)*time.Millisecond)
		defer cancel()
	}
	r, err := a.run(limited, mc, c)
	if limited.Err() != nil {
		return nil, fmt.Errorf("command %q passed its deadline of %d ms (deadline exceeded)", c.CaseId, c.DeadlineMs)
	}
	return r, err
}

func (a *agent) run(ctx context.Context, mc *worker.Context, c *cpb.Command) (*cpb.CommandResult, error) {
	r := &cpb.CommandResult{CaseId: c.CaseId}
	switch act := c.Action.(type) {
	case *cpb.Command_Publish: // AWP-CNF-010
		topic := worker.TopicID{Type: act.Publish.TopicType, Source: act.Publish.TopicSource}
		for i := range act.Publish.Count {
			ping := &cpb.Pong{Text: act.Publish.Text, Seq: act.Publish.FirstSeq + i}
			p, err := encode(act.Publish.Encoding, "Ping", ping)
			if err == nil && ctx.Err() == nil {
				err = mc.Publish(ctx, topic, p)
			}
			if err != nil || ctx.Err() != nil {
				return nil, fmt.Errorf("publish seq %d: %w", act.Publish.FirstSeq+i, err)
			}
		}
		r.Outcome = &cpb.CommandResult_Published{Published: act.Publish.Count}
	case *cpb.Command_Call: // AWP-CNF-011
		r.Outcome = &cpb.CommandResult_Call{Call: a.call(ctx, mc, act.Call)}
	case *cpb.Command_Fail: // AWP-CNF-012
		return nil, errors.New(act.Fail.Message)
	case *cpb.Command_Stall: // AWP-CNF-013
		select {
		case <-time.After(time.Duration(act.Stall.DurationMs) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		r.Outcome = &cpb.CommandResult_StalledMs{StalledMs: act.Stall.DurationMs}
	case *cpb.Command_Remember: // AWP-CNF-014
		a.mu.Lock()
		a.value = act.Remember.Value
		a.mu.Unlock()
		r.Outcome = &cpb.CommandResult_Remembered{Remembered: act.Remember.Value}
	case *cpb.Command_Recall:
		a.mu.Lock()
		r.Outcome = &cpb.CommandResult_Recalled{Recalled: a.value}
		a.mu.Unlock()
	default:
		return nil, fmt.Errorf("command %q has no known action", c.CaseId)
	}
	return r, nil
}

// call reports the outcome of a call as the runtime reported it; a reply
// that is no Pong counts as a handler failure.
func (a *agent) call(ctx context.Context, mc *worker.Context, c *cpb.CallAction) *cpb.CallOutcome {
	reply, err := encode(c.Encoding, "Ping", &cpb.Pong{Text: c.Ping.GetText(), Seq: c.Ping.GetSeq()})
	if err == nil {
		target := worker.AgentID{Type: c.Target.GetType(), Key: c.Target.GetKey()}
		reply, err = mc.Call(ctx, target, reply, time.Duration(c.TimeoutMs)*time.Millisecond)
	}
	if ce := (*worker.CallError)(nil); errors.As(err, &ce) {
		return &cpb.CallOutcome{ErrorCode: ce.Code, ErrorMessage: ce.Error()}
	}
	pong, enc, err := decode(reply, "Pong")
	if err != nil {
		return &cpb.CallOutcome{ErrorCode: pb.ErrorCode_ERROR_CODE_HANDLER_FAILED, ErrorMessage: "unexpected reply: " + err.Error()}
	}
	return &cpb.CallOutcome{Pong: pong, Encoding: enc}
}

// SaveState and LoadState carry the remembered value as {"value": ...}
// (AWP-CNF-014, AWP-CTL-001).
func (a *agent) SaveState() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, err := json.Marshal(jsonState{a.value})
	return string(b), err
}

func (a *agent) LoadState(state string) error {
	var s jsonState
	if err := json.Unmarshal([]byte(state), &s); state != "" && err != nil {
		return fmt.Errorf("conformance state must be a JSON object: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.value = s.Value
	return nil
}

type jsonState struct {
	Value string `json:"value"`
}
