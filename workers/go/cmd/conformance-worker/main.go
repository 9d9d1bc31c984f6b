// Command conformance-worker runs the standard conformance agents of spec
// section 16 (agentworker/conformance/v1/contract.proto).
//
//	AGENTWORKER_HOST_ADDRESS=127.0.0.1:50051 conformance-worker
//
// Settings come from the AGENTWORKER_* variables of spec 16.1. It prints
// "ready" once registered, runs until SIGTERM or SIGINT, then drains and
// exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	cpb "github.com/agentworker/agentworker/gen/go/agentworker/conformance/v1"
	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"github.com/agentworker/agentworker/workers/go/worker"
)

// jsonPing is the JSON encoding of Ping and Pong (AWP-CNF-004).
type jsonPing struct {
	Text     string `json:"text"`
	Seq      int32  `json:"seq"`
	AgentKey string `json:"agent_key,omitempty"`
}

// encodePing encodes a Ping (or, with a key, a Pong) in enc.
func encodePing(enc cpb.Encoding, text string, seq int32, key string, pong bool) (worker.Payload, error) {
	if enc == cpb.Encoding_ENCODING_PROTOBUF {
		if pong {
			return worker.Proto(&cpb.Pong{Text: text, Seq: seq, AgentKey: key})
		}
		return worker.Proto(&cpb.Ping{Text: text, Seq: seq})
	}
	if pong {
		return worker.JSON("Pong", jsonPing{Text: text, Seq: seq, AgentKey: key})
	}
	return worker.JSON("Ping", jsonPing{Text: text, Seq: seq})
}

// decodePing decodes a Ping (or Pong, by name) in either encoding.
func decodePing(p worker.Payload, name string, proto interface{ GetText() string }) (jsonPing, cpb.Encoding, error) {
	var v jsonPing
	if p.IsJSON(name) {
		return v, cpb.Encoding_ENCODING_JSON, p.DecodeJSON(&v)
	}
	switch m := proto.(type) {
	case *cpb.Ping:
		err := p.DecodeProto(m)
		return jsonPing{Text: m.Text, Seq: m.Seq}, cpb.Encoding_ENCODING_PROTOBUF, err
	case *cpb.Pong:
		err := p.DecodeProto(m)
		return jsonPing{Text: m.Text, Seq: m.Seq, AgentKey: m.AgentKey}, cpb.Encoding_ENCODING_PROTOBUF, err
	}
	return v, 0, worker.Unsupported(p)
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
	ping, enc, err := decodePing(msg, "Ping", &cpb.Ping{})
	if err != nil {
		return worker.Payload{}, err
	}
	return encodePing(enc, ping.Text, ping.Seq, a.key, true)
}

func (a *agent) OnEvent(ctx context.Context, mc *worker.Context, ev worker.Event) error {
	ping, enc, err := decodePing(ev.Payload, "Ping", &cpb.Ping{})
	if err != nil {
		return err
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
	return mc.Publish(ctx, worker.TopicID{Type: "conformance.receipts", Source: a.key}, p)
}

// command runs c, failing it when it passes its deadline (AWP-CNF-015).
func (a *agent) command(ctx context.Context, mc *worker.Context, c *cpb.Command) (*cpb.CommandResult, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(c.DeadlineMs, 1))*time.Millisecond)
	defer cancel()
	type outcome struct {
		result *cpb.CommandResult
		err    error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := a.run(ctx, mc, c)
		done <- outcome{r, err}
	}()
	select {
	case o := <-done:
		return o.result, o.err
	case <-ctx.Done():
		return nil, fmt.Errorf("command %q passed its deadline of %d ms (deadline exceeded)", c.CaseId, c.DeadlineMs)
	}
}

func (a *agent) run(ctx context.Context, mc *worker.Context, c *cpb.Command) (*cpb.CommandResult, error) {
	r := &cpb.CommandResult{CaseId: c.CaseId}
	switch act := c.Action.(type) {
	case *cpb.Command_Publish: // AWP-CNF-010
		topic := worker.TopicID{Type: act.Publish.TopicType, Source: act.Publish.TopicSource}
		for i := range act.Publish.Count {
			p, err := encodePing(act.Publish.Encoding, act.Publish.Text, act.Publish.FirstSeq+i, "", false)
			if err == nil {
				err = mc.Publish(ctx, topic, p)
			}
			if err != nil {
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

func (a *agent) call(ctx context.Context, mc *worker.Context, c *cpb.CallAction) *cpb.CallOutcome {
	failed := func(code pb.ErrorCode, err error) *cpb.CallOutcome {
		return &cpb.CallOutcome{ErrorCode: code, ErrorMessage: err.Error()}
	}
	ping, err := encodePing(c.Encoding, c.Ping.GetText(), c.Ping.GetSeq(), "", false)
	if err != nil {
		return failed(pb.ErrorCode_ERROR_CODE_HANDLER_FAILED, err)
	}
	target := worker.AgentID{Type: c.Target.GetType(), Key: c.Target.GetKey()}
	reply, err := mc.Call(ctx, target, ping, time.Duration(c.TimeoutMs)*time.Millisecond)
	if ce := (*worker.CallError)(nil); errors.As(err, &ce) {
		return failed(ce.Code, err)
	}
	pong, enc, err := decodePing(reply, "Pong", &cpb.Pong{})
	if err != nil {
		return failed(pb.ErrorCode_ERROR_CODE_HANDLER_FAILED, fmt.Errorf("unexpected reply: %w", err))
	}
	return &cpb.CallOutcome{Pong: &cpb.Pong{Text: pong.Text, Seq: pong.Seq, AgentKey: pong.AgentKey}, Encoding: enc}
}

// SaveState and LoadState carry the remembered value (AWP-CNF-014).
func (a *agent) SaveState() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, err := json.Marshal(map[string]string{"value": a.value})
	return string(b), err
}

func (a *agent) LoadState(state string) error {
	var s struct{ Value string }
	if state != "" {
		if err := json.Unmarshal([]byte(state), &s); err != nil {
			return fmt.Errorf("conformance state must be a JSON object: %w", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.value = s.Value
	return nil
}

func main() { os.Exit(run()) }

func run() int {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("AGENTWORKER_LOG_LEVEL"))); err != nil {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		log.Error("bad settings", "err", err)
		return 2
	}
	cfg.Logger = log
	w, err := worker.New(cfg)
	if err != nil {
		log.Error("bad settings", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	newAgent := func(id worker.AgentID) (worker.Agent, error) { return &agent{key: id.Key}, nil }
	if err := w.Register(ctx, "conformance", newAgent,
		worker.TypeSubscription("conformance.broadcast", "conformance"),
		worker.PrefixSubscription("conformance.prefix.", "conformance")); err != nil {
		log.Error("register", "err", err)
		return 1
	}
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := w.Start(startCtx); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	fmt.Println("ready")
	select {
	case <-ctx.Done():
		w.Shutdown() // AWP-CONN-017
		return 0
	case <-w.Done():
		log.Error("stopped", "err", w.Err())
		return 1
	}
}
