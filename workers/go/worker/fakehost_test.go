package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	cepb "github.com/agentworker/agentworker/gen/go/agentworker/cloudevents/v1"
	cpb "github.com/agentworker/agentworker/gen/go/agentworker/conformance/v1"
	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const testWait = 10 * time.Second

// fakeHost is a scripted host on a loopback port: the test reads what the
// worker sends and writes frames to it.
type fakeHost struct {
	pb.UnimplementedAgentRpcServiceServer
	t      *testing.T
	server *grpc.Server
	addr   string

	mu        sync.Mutex
	clientIDs []string // client-id of every call, in arrival order
	hellos    []*pb.ChannelHello
	types     []string
	subs      []*pb.Subscription
	rejects   int  // OpenChannel calls still to answer ALREADY_EXISTS
	legacy    bool // send no welcome, like an AutoGen host
	batches   int  // batch frames received
	controls  int  // control channels opened

	channels chan *hostChannel
	onCall   func(ctx context.Context) // called on every call, under mu
}

// metadataFrom returns the authorization values of an incoming call.
func metadataFrom(ctx context.Context) ([]string, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	return md.Get("authorization"), ok
}

type hostChannel struct {
	stream pb.AgentRpcService_OpenChannelServer
	frames chan *pb.OpenChannelRequest
	end    chan error // the handler returns what is sent here
}

func startFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{t: t, server: grpc.NewServer(), addr: lis.Addr().String(), channels: make(chan *hostChannel, 4)}
	pb.RegisterAgentRpcServiceServer(h.server, h)
	go func() { _ = h.server.Serve(lis) }()
	t.Cleanup(h.server.Stop)
	return h
}

func (h *fakeHost) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clientIDs = append(h.clientIDs, md.Get("client-id")...)
	if h.onCall != nil {
		h.onCall(ctx)
	}
}

func (h *fakeHost) OpenChannel(stream pb.AgentRpcService_OpenChannelServer) error {
	h.record(stream.Context())
	md, _ := metadata.FromIncomingContext(stream.Context())
	var hello pb.ChannelHello
	if vals := md.Get(helloKey); len(vals) == 1 {
		if err := proto.Unmarshal([]byte(vals[0]), &hello); err != nil {
			return status.Error(codes.InvalidArgument, "bad hello")
		}
	}
	h.mu.Lock()
	h.hellos = append(h.hellos, &hello)
	reject := h.rejects > 0
	if reject {
		h.rejects--
	}
	h.mu.Unlock()
	if reject {
		return status.Error(codes.AlreadyExists, "client-id has an open channel")
	}
	welcome, _ := proto.Marshal(&pb.ChannelWelcome{
		ProtocolVersion: 1, DefaultRpcTimeoutMs: 60000, MaxMessageBytes: 4 << 20,
		Capabilities: []pb.Capability{pb.Capability_CAPABILITY_BATCHING},
	})
	h.mu.Lock()
	legacy := h.legacy
	h.mu.Unlock()
	if !legacy {
		if err := stream.SendHeader(metadata.Pairs(welcomeKey, string(welcome))); err != nil {
			return err
		}
	}
	ch := &hostChannel{stream: stream, frames: make(chan *pb.OpenChannelRequest, 1024), end: make(chan error, 1)}
	go func() {
		defer close(ch.frames)
		for {
			f, err := stream.Recv()
			if err != nil {
				return
			}
			// Unbatch, so that tests see frames one by one.
			if b := f.GetBatch(); b != nil {
				h.mu.Lock()
				h.batches++
				h.mu.Unlock()
				for _, inner := range b.GetMessages() {
					ch.frames <- inner
				}
				continue
			}
			ch.frames <- f
		}
	}()
	h.channels <- ch
	select {
	case err := <-ch.end:
		return err
	case <-stream.Context().Done():
		return nil
	}
}

func (h *fakeHost) OpenControlChannel(stream pb.AgentRpcService_OpenControlChannelServer) error {
	h.record(stream.Context())
	h.mu.Lock()
	h.controls++
	h.mu.Unlock()
	for {
		if _, err := stream.Recv(); err != nil {
			return nil
		}
	}
}

func (h *fakeHost) RegisterAgent(ctx context.Context, r *pb.RegisterAgentRequest) (*pb.RegisterAgentResponse, error) {
	h.record(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.types = append(h.types, r.GetType())
	return &pb.RegisterAgentResponse{}, nil
}

func (h *fakeHost) AddSubscription(ctx context.Context, r *pb.AddSubscriptionRequest) (*pb.AddSubscriptionResponse, error) {
	h.record(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = append(h.subs, r.GetSubscription())
	return &pb.AddSubscriptionResponse{}, nil
}

func (h *fakeHost) channel(t *testing.T) *hostChannel {
	t.Helper()
	select {
	case ch := <-h.channels:
		return ch
	case <-time.After(testWait):
		t.Fatal("the worker opened no data channel")
		return nil
	}
}

func (c *hostChannel) next(t *testing.T) *pb.OpenChannelRequest {
	t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			t.Fatal("the data channel ended")
		}
		return f
	case <-time.After(testWait):
		t.Fatal("no frame from the worker")
		return nil
	}
}

func (c *hostChannel) send(t *testing.T, f *pb.OpenChannelResponse) {
	t.Helper()
	if err := c.stream.Send(f); err != nil {
		t.Fatal(err)
	}
}

func request(id, key string, p Payload) *pb.OpenChannelResponse {
	return &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Request{Request: &pb.RpcRequest{
		RequestId: id, Target: &pb.AgentId{Type: "echo", Key: key}, Payload: p.proto(),
	}}}
}

func response(id string, p Payload) *pb.OpenChannelResponse {
	return &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Response{Response: &pb.RpcResponse{
		RequestId: id, Payload: p.proto(),
	}}}
}

// echo answers a Ping with a Pong naming its key, panics on "panic" and
// publishes a receipt for each Ping event.
type echo struct{ key string }

func (e *echo) OnRequest(ctx context.Context, mc *Context, msg Payload) (Payload, error) {
	var ping cpb.Ping
	if err := msg.DecodeProto(&ping); err != nil {
		return Payload{}, err
	}
	switch ping.Text {
	case "panic":
		panic("handler exploded")
	case "none":
		return Payload{}, nil
	case "slow":
		time.Sleep(300 * time.Millisecond)
	}
	return Proto(&cpb.Pong{Text: ping.Text, Seq: ping.Seq, AgentKey: e.key})
}

func (e *echo) OnEvent(ctx context.Context, mc *Context, ev Event) error {
	var ping cpb.Ping
	if err := ev.Payload.DecodeProto(&ping); err != nil {
		return err
	}
	p, _ := Proto(&cpb.EventReceipt{AgentKey: e.key, Seq: ping.Seq, EventId: ev.ID})
	return mc.Publish(ctx, TopicID{Type: "receipts", Source: e.key}, p)
}

func startWorker(t *testing.T, h *fakeHost, reconnect bool) *Worker {
	t.Helper()
	return startWorkerWith(t, h, Config{Reconnect: reconnect})
}

func startWorkerWith(t *testing.T, h *fakeHost, cfg Config) *Worker {
	t.Helper()
	cfg.Address, cfg.ClientID, cfg.ShutdownGrace = h.addr, "go-test", 2*time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	err = w.Register(ctx, "echo", func(id AgentID) (Agent, error) { return &echo{key: id.Key}, nil },
		TypeSubscription("broadcast", "echo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w
}

func pingPayload(text string, seq int32) Payload { return must(Proto(&cpb.Ping{Text: text, Seq: seq})) }

func TestHandshakeMetadataAndRegistration(t *testing.T) {
	h := startFakeHost(t)
	w := startWorker(t, h, false)
	h.channel(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clientIDs) < 4 {
		t.Fatalf("calls seen: %v", h.clientIDs)
	}
	for _, id := range h.clientIDs {
		if id != "go-test" {
			t.Fatalf("a call carried client-id %q", id)
		}
	}
	hello := h.hellos[0]
	if hello.GetProtocolVersion() != 1 || hello.GetImplementation() == "" {
		t.Fatalf("hello = %v", hello)
	}
	if len(h.types) != 1 || h.types[0] != "echo" || len(h.subs) != 2 {
		t.Fatalf("registered %v, subscriptions %v", h.types, h.subs)
	}
	direct := h.subs[0].GetTypePrefixSubscription()
	if direct.GetTopicTypePrefix() != "echo:" || direct.GetAgentType() != "echo" {
		t.Fatalf("no direct-addressing subscription: %v", h.subs)
	}
	if w.Welcome().GetDefaultRpcTimeoutMs() != 60000 {
		t.Fatalf("welcome = %v", w.Welcome())
	}
}

func TestRequestsAreAnsweredOnceWithTheirIDs(t *testing.T) {
	h := startFakeHost(t)
	startWorker(t, h, false)
	ch := h.channel(t)
	ch.send(t, request("h1", "a", pingPayload("hi", 1)))
	ch.send(t, request("h2", "a", pingPayload("panic", 2)))
	ch.send(t, request("h3", "a", Payload{DataType: "Other", ContentType: ContentTypeJSON, Data: []byte("{}")}))
	ch.send(t, request("h4", "b", pingPayload("none", 4)))
	got := map[string]*pb.RpcResponse{}
	for len(got) < 4 {
		r := ch.next(t).GetResponse()
		if r == nil {
			t.Fatal("a frame other than a response")
		}
		if got[r.GetRequestId()] != nil {
			t.Fatalf("request %s answered twice", r.GetRequestId())
		}
		got[r.GetRequestId()] = r
	}
	var pong cpb.Pong
	if err := payloadFromProto(got["h1"].GetPayload()).DecodeProto(&pong); err != nil || pong.AgentKey != "a" || pong.Seq != 1 {
		t.Fatalf("h1 = %v (%v)", got["h1"], err)
	}
	if r := got["h2"]; r.GetErrorCode() != pb.ErrorCode_ERROR_CODE_HANDLER_FAILED || r.GetError() == "" {
		t.Fatalf("panicking handler answered %v", r)
	}
	if r := got["h3"]; r.GetErrorCode() != pb.ErrorCode_ERROR_CODE_UNSUPPORTED_MESSAGE || r.GetError() == "" {
		t.Fatalf("unsupported payload answered %v", r)
	}
	if p := got["h4"].GetPayload(); p.GetDataType() != "NoneType" || string(p.GetData()) != "null" {
		t.Fatalf("empty reply answered %v", got["h4"])
	}
}

func unknownCase() *pb.OpenChannelResponse {
	f := &pb.OpenChannelResponse{}
	raw := protowire.AppendTag(nil, 99, protowire.BytesType)
	f.ProtoReflect().SetUnknown(protowire.AppendBytes(raw, []byte("future")))
	return f
}

func TestResponsesMatchByIDInAnyOrderAndOddFramesAreTolerated(t *testing.T) {
	h := startFakeHost(t)
	notices := make(chan *pb.Notice, 4)
	w := startWorkerWith(t, h, Config{OnNotice: func(n *pb.Notice) { notices <- n }})
	ch := h.channel(t)
	type result struct {
		text string
		err  error
	}
	results := make(chan result, 2)
	for _, text := range []string{"first", "second"} {
		go func() {
			p, err := w.Call(context.Background(), AgentID{"remote", text}, pingPayload(text, 0), 5*time.Second)
			var pong cpb.Pong
			if err == nil {
				err = p.DecodeProto(&pong)
			}
			results <- result{pong.Text, err}
		}()
	}
	reqs := map[string]*pb.RpcRequest{}
	for range 2 {
		r := ch.next(t).GetRequest()
		if r.GetRequestId() == "" || reqs[r.GetRequestId()] != nil || r.GetTimeoutMs() != 5000 || r.GetSource() != nil {
			t.Fatalf("request %v", r)
		}
		reqs[r.GetRequestId()] = r
	}
	// Noise first: an unknown id, an unknown case, a notice, a nested batch.
	ch.send(t, response("no-such-id", pingPayload("x", 0)))
	ch.send(t, unknownCase())
	ch.send(t, &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Notice{Notice: &pb.Notice{
		Code: pb.ErrorCode(77), Message: "from the future"}}})
	// Then the answers in reverse order, in one batch.
	var batch []*pb.OpenChannelResponse
	for id, r := range reqs {
		pong := must(Proto(&cpb.Pong{Text: r.GetTarget().GetKey()}))
		batch = append([]*pb.OpenChannelResponse{response(id, pong)}, batch...)
	}
	ch.send(t, &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Batch_{Batch: &pb.OpenChannelResponse_Batch{Messages: batch}}})
	for range 2 {
		r := <-results
		if r.err != nil || (r.text != "first" && r.text != "second") {
			t.Fatalf("call result %+v", r)
		}
	}
	if n := <-notices; n.GetMessage() != "from the future" {
		t.Fatalf("notice handed over as %v", n)
	}
	// The channel is still up.
	go func() { ch.send(t, request("h9", "k", pingPayload("alive", 9))) }()
	if r := ch.next(t).GetResponse(); r.GetRequestId() != "h9" || r.GetError() != "" {
		t.Fatalf("after the noise: %v", r)
	}
}

func TestCallErrors(t *testing.T) {
	h := startFakeHost(t)
	w := startWorker(t, h, false)
	ch := h.channel(t)
	errs := make(chan error, 1)
	call := func(timeout time.Duration) {
		_, err := w.Call(context.Background(), AgentID{"x", "y"}, pingPayload("", 0), timeout)
		errs <- err
	}

	go call(time.Second)
	r := ch.next(t).GetRequest()
	ch.send(t, &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Response{Response: &pb.RpcResponse{
		RequestId: r.GetRequestId(), Error: "nobody", ErrorCode: pb.ErrorCode_ERROR_CODE_UNKNOWN_TARGET}}})
	if err := <-errs; !errors.Is(err, ErrUnknownTarget) {
		t.Fatalf("unknown target surfaced as %v", err)
	}

	// The host never answers: the local timeout (timeout + 1 s) ends the call.
	start := time.Now()
	go call(100 * time.Millisecond)
	ch.next(t)
	err := <-errs
	if !errors.Is(err, ErrDeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("silent host: %v after %v", err, time.Since(start))
	}

	// A notice naming the request's id leaves the call pending (AWP-ERR-022):
	// notice ids are host ids of requests delivered to this worker.
	go call(5 * time.Second)
	r = ch.next(t).GetRequest()
	ch.send(t, &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Notice{Notice: &pb.Notice{
		Code: pb.ErrorCode_ERROR_CODE_INVALID_REQUEST, Message: "bad", RequestId: r.GetRequestId()}}})
	ch.send(t, &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_Response{Response: &pb.RpcResponse{
		RequestId: r.GetRequestId(), Payload: r.GetPayload()}}})
	if err := <-errs; err != nil {
		t.Fatalf("a notice ended the call: %v", err)
	}

	// The channel ends: calls in flight fail at once with TARGET_UNAVAILABLE.
	go call(30 * time.Second)
	ch.next(t)
	ch.end <- status.Error(codes.Unavailable, "host going away")
	select {
	case err := <-errs:
		if !errors.Is(err, ErrTargetUnavailable) {
			t.Fatalf("lost channel surfaced as %v", err)
		}
	case <-time.After(testWait):
		t.Fatal("a call still waits after the channel ended")
	}
	select {
	case <-w.Done():
		if w.Err() == nil {
			t.Fatal("no error after losing the channel without reconnect")
		}
	case <-time.After(testWait):
		t.Fatal("the worker did not stop after losing the channel")
	}
}

func TestEventsAreDeliveredInOrderAndNotToTheSender(t *testing.T) {
	h := startFakeHost(t)
	startWorker(t, h, false)
	ch := h.channel(t)
	self := AgentID{"echo", "k"}
	for seq := range int32(20) {
		var sender *AgentID
		if seq == 5 {
			sender = &self // its own event: not delivered back
		}
		ev, _ := buildCloudEvent(pingPayload("", seq), TopicID{"broadcast", "k"}, sender)
		ch.send(t, &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_CloudEvent{CloudEvent: ev}})
	}
	bad := &cepb.CloudEvent{Id: "bad", Type: "broadcast", Source: "k", SpecVersion: "1.0"}
	ch.send(t, &pb.OpenChannelResponse{Message: &pb.OpenChannelResponse_CloudEvent{CloudEvent: bad}})
	var seqs []int32
	for len(seqs) < 19 {
		ev := ch.next(t).GetCloudEvent()
		if ev.GetType() != "receipts" || ev.GetSource() != "k" {
			t.Fatalf("unexpected event %v", ev)
		}
		var receipt cpb.EventReceipt
		if err := ev.GetProtoData().UnmarshalTo(&receipt); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, receipt.Seq)
	}
	want := int32(0)
	for _, s := range seqs {
		if want == 5 {
			want++
		}
		if s != want {
			t.Fatalf("receipts out of order: %v", seqs)
		}
		want++
	}
}

func TestReconnectRetriesAlreadyExistsAndReRegisters(t *testing.T) {
	h := startFakeHost(t)
	w := startWorker(t, h, true)
	first := h.channel(t)
	h.mu.Lock()
	h.rejects = 2 // the host has not yet noticed the old channel end
	before := make([]string, len(h.subs))
	for i, s := range h.subs {
		before[i] = s.GetId()
	}
	h.subs = nil
	h.types = nil
	h.mu.Unlock()
	first.end <- status.Error(codes.Unavailable, "restart")
	second := h.channel(t)
	go func() { second.send(t, request("after", "k", pingPayload("back", 1))) }()
	if r := second.next(t).GetResponse(); r.GetRequestId() != "after" || r.GetError() != "" {
		t.Fatalf("after reconnecting: %v", r)
	}
	deadline := time.Now().Add(testWait)
	for w.Welcome() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if w.Welcome() == nil {
		t.Fatal("no connection after reconnecting")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.hellos) != 4 {
		t.Fatalf("%d OpenChannel calls, want 4 (1 + 2 rejected + 1)", len(h.hellos))
	}
	var after []string
	for _, s := range h.subs {
		after = append(after, s.GetId())
	}
	if len(h.types) != 1 || len(after) != len(before) || after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("re-registered %v with subscriptions %v, want %v", h.types, after, before)
	}
}

func TestShutdownFinishesRunningHandlersAndRefusesNewOnes(t *testing.T) {
	h := startFakeHost(t)
	w := startWorker(t, h, false)
	ch := h.channel(t)
	ch.send(t, request("slow", "k", pingPayload("slow", 1)))
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan struct{})
	go func() {
		w.Shutdown()
		close(stopped)
	}()
	time.Sleep(50 * time.Millisecond)
	ch.send(t, request("late", "k", pingPayload("late", 2)))
	got := map[string]*pb.RpcResponse{}
	for len(got) < 2 {
		r := ch.next(t).GetResponse()
		got[r.GetRequestId()] = r
	}
	if got["slow"].GetError() != "" {
		t.Fatalf("running handler answered %v", got["slow"])
	}
	if got["late"].GetErrorCode() != pb.ErrorCode_ERROR_CODE_SHUTTING_DOWN {
		t.Fatalf("request during shutdown answered %v", got["late"])
	}
	select {
	case _, ok := <-ch.frames:
		if ok {
			t.Fatal("a frame after the responses")
		}
	case <-time.After(testWait):
		t.Fatal("the worker did not half-close its channel")
	}
	select {
	case <-stopped:
	case <-time.After(testWait):
		t.Fatal("Shutdown did not return")
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err after Shutdown = %v", err)
	}
}

func TestLegacyHostGetsNoV1Extensions(t *testing.T) {
	defer func(d time.Duration) { welcomeWait = d }(welcomeWait)
	welcomeWait = 200 * time.Millisecond
	h := startFakeHost(t)
	h.legacy = true
	w := startWorker(t, h, false)
	ch := h.channel(t)
	if w.Welcome() != nil {
		t.Fatal("a welcome from a legacy host")
	}
	// A burst that a v1 connection with batching would batch.
	ctx := context.Background()
	for seq := range int32(200) {
		if err := w.Publish(ctx, TopicID{"t", "s"}, pingPayload("", seq)); err != nil {
			t.Fatal(err)
		}
	}
	for seq := range int32(200) {
		var ping cpb.Ping
		if err := ch.next(t).GetCloudEvent().GetProtoData().UnmarshalTo(&ping); err != nil || ping.Seq != seq {
			t.Fatalf("event %d: %v (%v)", seq, &ping, err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.batches != 0 || h.controls != 0 {
		t.Fatalf("%d batches and %d control channels sent to a legacy host", h.batches, h.controls)
	}
}

func TestPublishBurstIsBatchedInOrderWhenBatchingIsInForce(t *testing.T) {
	h := startFakeHost(t)
	w := startWorker(t, h, false)
	ch := h.channel(t)
	ctx := context.Background()
	const n = 2000
	go func() {
		for seq := range int32(n) {
			if err := w.Publish(ctx, TopicID{"t", "s"}, pingPayload("", seq)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for seq := range int32(n) {
		var ping cpb.Ping
		if err := ch.next(t).GetCloudEvent().GetProtoData().UnmarshalTo(&ping); err != nil || ping.Seq != seq {
			t.Fatalf("event %d: %v (%v)", seq, &ping, err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.controls != 1 {
		t.Fatalf("%d control channels, want 1", h.controls)
	}
	t.Logf("%d events arrived in %d batches (and single frames)", n, h.batches)
}
