package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	cpb "github.com/agentworker/agentworker/gen/go/agentworker/conformance/v1"
	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
)

// funcAgent runs one function for requests and events alike.
type funcAgent struct {
	key    string
	handle func(ctx context.Context, mc *Context, key string, ping *cpb.Ping) (Payload, error)
}

func (a *funcAgent) OnRequest(ctx context.Context, mc *Context, msg Payload) (Payload, error) {
	var ping cpb.Ping
	if err := msg.DecodeProto(&ping); err != nil {
		return Payload{}, err
	}
	return a.handle(ctx, mc, a.key, &ping)
}

func (a *funcAgent) OnEvent(ctx context.Context, mc *Context, ev Event) error {
	var ping cpb.Ping
	if err := ev.Payload.DecodeProto(&ping); err != nil {
		return err
	}
	_, err := a.handle(ctx, mc, a.key, &ping)
	return err
}

type handlerFunc = func(ctx context.Context, mc *Context, key string, ping *cpb.Ping) (Payload, error)

// startAgents starts a worker serving each type with its handler; each
// type is subscribed to the topic type "<type>.topic".
func startAgents(t *testing.T, h *fakeHost, cfg Config, handlers map[string]handlerFunc) *Worker {
	t.Helper()
	cfg.Address, cfg.ClientID, cfg.ShutdownGrace = h.addr, "go-test", 2*time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for typ, handle := range handlers {
		factory := func(id AgentID) (Agent, error) { return &funcAgent{key: id.Key, handle: handle}, nil }
		if err := w.Register(ctx, typ, factory, TypeSubscription(typ+".topic", typ)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w
}

func requestTo(id string, target AgentID, ping *cpb.Ping, timeoutMs uint64) *pb.OpenChannelResponse {
	return &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Request{Request: &pb.RpcRequest{
		RequestId: id, Target: target.proto(), Payload: must(Proto(ping)).proto(), TimeoutMs: timeoutMs,
	}}}
}

func eventTo(t *testing.T, topicType, source string, ping *cpb.Ping) *pb.OpenChannelResponse {
	t.Helper()
	ev, err := buildCloudEvent(must(Proto(ping)), TopicID{Type: topicType, Source: source}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_CloudEvent{CloudEvent: ev}}
}

// relay plays a host that delivers the worker's requests back to the same
// worker and their responses back to the caller; it returns the responses
// to the requests the test sent. It serializes its writes with mu.
func relay(t *testing.T, ch *hostChannel, mu *sync.Mutex) <-chan *pb.RpcResponse {
	answers := make(chan *pb.RpcResponse, 64)
	go func() {
		for f := range ch.frames {
			var out *pb.OpenChannelResponse
			switch {
			case f.GetRequest() != nil:
				r := f.GetRequest()
				r.RequestId = "loop-" + r.RequestId
				out = &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Request{Request: r}}
			case f.GetResponse() != nil && strings.HasPrefix(f.GetResponse().GetRequestId(), "loop-"):
				r := f.GetResponse()
				r.RequestId = strings.TrimPrefix(r.RequestId, "loop-")
				out = &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Response{Response: r}}
			case f.GetResponse() != nil:
				answers <- f.GetResponse()
			}
			if out != nil {
				mu.Lock()
				err := ch.stream.Send(out)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	return answers
}

func sendLocked(t *testing.T, ch *hostChannel, mu *sync.Mutex, f *pb.OpenChannelResponse) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	ch.send(t, f)
}

func collect(t *testing.T, answers <-chan *pb.RpcResponse, n int) map[string]*pb.RpcResponse {
	t.Helper()
	got := map[string]*pb.RpcResponse{}
	deadline := time.After(testWait)
	for len(got) < n {
		select {
		case r := <-answers:
			got[r.GetRequestId()] = r
		case <-deadline:
			t.Fatalf("%d of %d requests answered: %v", len(got), n, got)
		}
	}
	return got
}

// Every slot is held by a handler that calls another agent on the same
// worker: the calls complete, because responses never wait for a slot and a
// waiting caller lends its slot (AWP-FLOW-030).
func TestEverySlotCallingAnAgentOnTheSameWorkerCompletes(t *testing.T) {
	const slots = 2
	const callers = 3 * slots
	var mu sync.Mutex
	running := 0
	allCalling := make(chan struct{}) // closed once as many callers as slots wait in calls
	h := startFakeHost(t)
	startAgents(t, h, Config{MaxConcurrency: slots}, map[string]handlerFunc{
		"outer": func(ctx context.Context, mc *Context, key string, ping *cpb.Ping) (Payload, error) {
			mu.Lock()
			if running++; running == slots {
				close(allCalling)
			}
			mu.Unlock()
			return mc.Call(ctx, AgentID{"inner", key}, must(Proto(ping)), 20*time.Second)
		},
		"inner": func(ctx context.Context, mc *Context, key string, ping *cpb.Ping) (Payload, error) {
			select { // answers only once callers could hold every slot
			case <-allCalling:
			case <-ctx.Done():
				return Payload{}, ctx.Err()
			}
			return Proto(&cpb.Pong{Text: ping.Text, AgentKey: key})
		},
	})
	ch := h.channel(t)
	var send sync.Mutex
	answers := relay(t, ch, &send)
	for i := range callers {
		sendLocked(t, ch, &send, requestTo(fmt.Sprint("r", i), AgentID{"outer", fmt.Sprint("k", i)}, &cpb.Ping{Text: "go"}, 30000))
	}
	got := collect(t, answers, callers)
	for i := range callers {
		r := got[fmt.Sprint("r", i)]
		var pong cpb.Pong
		if r.GetError() != "" || payloadFromProto(r.GetPayload()).DecodeProto(&pong) != nil || pong.AgentKey != fmt.Sprint("k", i) {
			t.Fatalf("r%d answered %v", i, r)
		}
	}
}

// One agent handles its messages one at a time in arrival order, requests
// and events alike, while another agent runs meanwhile (AWP-CONN-040,
// AWP-CONN-041).
func TestOneAgentHandlesOneMessageAtATime(t *testing.T) {
	var mu sync.Mutex
	var log []string
	release := make(chan struct{})
	otherDone := make(chan struct{})
	h := startFakeHost(t)
	startAgents(t, h, Config{}, map[string]handlerFunc{
		"a": func(ctx context.Context, mc *Context, key string, ping *cpb.Ping) (Payload, error) {
			line := key + ":" + ping.Text
			mu.Lock()
			log = append(log, "start "+line)
			mu.Unlock()
			if ping.Text == "first" {
				<-release
			}
			mu.Lock()
			log = append(log, "end "+line)
			mu.Unlock()
			if key == "y" {
				close(otherDone)
			}
			return Proto(&cpb.Pong{Text: ping.Text})
		},
	})
	ch := h.channel(t)
	ch.send(t, eventTo(t, "a.topic", "x", &cpb.Ping{Text: "first"}))
	ch.send(t, requestTo("second", AgentID{"a", "x"}, &cpb.Ping{Text: "second"}, 30000))
	ch.send(t, eventTo(t, "a.topic", "y", &cpb.Ping{Text: "other"}))
	select {
	case <-otherDone:
	case <-time.After(testWait):
		t.Fatal("another agent did not run while the first was busy")
	}
	mu.Lock()
	for _, line := range log {
		if line == "start x:second" {
			t.Fatalf("x started its second message during its first: %v", log)
		}
	}
	mu.Unlock()
	close(release)
	if r := ch.next(t).GetResponse(); r.GetRequestId() != "second" || r.GetError() != "" {
		t.Fatalf("second answered %v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	var x []string
	for _, line := range log {
		if strings.Contains(line, "x:") {
			x = append(x, line)
		}
	}
	want := []string{"start x:first", "end x:first", "start x:second", "end x:second"}
	if fmt.Sprint(x) != fmt.Sprint(want) {
		t.Fatalf("x handled %v, want %v", x, want)
	}
}

// A full inbound queue answers a request OVERLOADED, keeps an event and
// stops reading until there is room (AWP-FLOW-031, AWP-FLOW-032); a request
// whose deadline passes while it waits is not run (AWP-FLOW-033).
func TestFullInboundQueue(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	h := startFakeHost(t)
	w := startAgents(t, h, Config{MaxConcurrency: 1, MaxQueued: 2}, map[string]handlerFunc{
		"a": func(ctx context.Context, mc *Context, key string, ping *cpb.Ping) (Payload, error) {
			if ping.Text == "block" {
				<-release
			}
			mu.Lock()
			seen = append(seen, ping.Text)
			mu.Unlock()
			return Proto(&cpb.Pong{Text: ping.Text})
		},
	})
	ch := h.channel(t)
	ch.send(t, requestTo("block", AgentID{"a", "k0"}, &cpb.Ping{Text: "block"}, 30000))
	ch.send(t, requestTo("expires", AgentID{"a", "k1"}, &cpb.Ping{Text: "expires"}, 1))
	ch.send(t, requestTo("q2", AgentID{"a", "k2"}, &cpb.Ping{Text: "q2"}, 30000))
	ch.send(t, requestTo("over", AgentID{"a", "k3"}, &cpb.Ping{Text: "over"}, 30000))
	if r := ch.next(t).GetResponse(); r.GetRequestId() != "over" || r.GetErrorCode() != pb.ErrorCode_ERROR_CODE_OVERLOADED || r.GetError() == "" {
		t.Fatalf("a request past the queue's bound answered %v", r)
	}
	ch.send(t, eventTo(t, "a.topic", "k4", &cpb.Ping{Text: "kept"}))
	deadline := time.Now().Add(testWait)
	for w.ReadPauses() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not stop reading with a full queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ch.send(t, requestTo("after", AgentID{"a", "k5"}, &cpb.Ping{Text: "after"}, 30000))
	time.Sleep(10 * time.Millisecond) // lets the 1 ms deadline of "expires" pass while it waits
	close(release)
	got := map[string]*pb.RpcResponse{}
	for len(got) < 4 {
		r := ch.next(t).GetResponse()
		got[r.GetRequestId()] = r
	}
	for _, id := range []string{"block", "q2", "after"} {
		if got[id].GetError() != "" {
			t.Fatalf("%s answered %v", id, got[id])
		}
	}
	if r := got["expires"]; r.GetErrorCode() != pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED {
		t.Fatalf("a request that expired while waiting answered %v", r)
	}
	for w.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event was not handled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "block,q2,kept,after" || w.Overloaded() != 1 {
		t.Fatalf("handled %v, overloaded %d", seen, w.Overloaded())
	}
}
