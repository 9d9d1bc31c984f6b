// Package worker is a small agentworker v1 worker runtime built on the
// generated stubs: it connects to a host, registers agent types and
// subscriptions, dispatches RPCs and events to agents by AgentID, publishes
// CloudEvents and calls other agents with deadlines.
//
// Requirement IDs (AWP-...) refer to spec/protocol.md.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Implementation names this runtime in the hello.
const Implementation = "agentworker-go/0.1.0 (go)"

const (
	maxMessageBytes    = 64 << 20
	defaultRPCTimeout  = 60 * time.Second
	localTimeoutMargin = time.Second // AWP-RPC-012
	unaryTimeout       = 15 * time.Second
	backoffFirst       = 250 * time.Millisecond
	backoffCap         = 30 * time.Second
)

// welcomeWait bounds the wait for the host's response header; a host that
// sends none by then is a legacy host (AWP-VER-015).
var welcomeWait = 5 * time.Second

// Worker runs agents and keeps one connection to a host.
type Worker struct {
	cfg      Config
	clientID string
	caps     []pb.Capability
	log      *slog.Logger
	ids      requestIDs

	cc     *grpc.ClientConn
	client pb.AgentRpcServiceClient

	mu        sync.Mutex
	factories map[string]Factory
	types     []string
	subs      []Subscription
	agents    map[AgentID]Agent
	conn      *connection
	pending   map[string]*pendingCall
	connected chan struct{} // closed while a connection is up; replaced when lost

	dispatch      *dispatcher
	gate          sync.RWMutex // orders handlers.Add before handlers.Wait
	handlers      sync.WaitGroup
	accepting     atomic.Bool
	stopping      atomic.Bool
	undecodable   atomic.Uint64
	overloaded    atomic.Uint64
	readPauses    atomic.Uint64
	handlerCtx    context.Context
	cancelHandler context.CancelFunc
	done          chan struct{}
	doneErr       error
	doneOnce      sync.Once
}

type pendingCall struct {
	conn *connection
	ch   chan *pb.RpcResponse
}

// New returns a worker for cfg. It does not connect until Start.
func New(cfg Config) (*Worker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		cfg.ClientID = newUUID()
	}
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = 256
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 10000
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 5 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	hctx, cancel := context.WithCancel(context.Background())
	return &Worker{
		cfg:           cfg,
		clientID:      cfg.ClientID,
		caps:          cfg.capabilities(),
		log:           log,
		factories:     map[string]Factory{},
		agents:        map[AgentID]Agent{},
		pending:       map[string]*pendingCall{},
		connected:     make(chan struct{}),
		dispatch:      newDispatcher(cfg.MaxConcurrency, cfg.MaxQueued),
		handlerCtx:    hctx,
		cancelHandler: cancel,
		done:          make(chan struct{}),
	}, nil
}

// ClientID returns the worker's client-id.
func (w *Worker) ClientID() string { return w.clientID }

// Capabilities returns the capabilities the worker announces.
func (w *Worker) Capabilities() []pb.Capability { return append([]pb.Capability(nil), w.caps...) }

// Welcome returns the current connection's welcome; nil when not connected
// or talking to a legacy host.
func (w *Worker) Welcome() *pb.ChannelWelcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return nil
	}
	return w.conn.welcome
}

// Done is closed when the worker has stopped: after Shutdown, or when the
// connection is lost and reconnecting is off (see Err).
func (w *Worker) Done() <-chan struct{} { return w.done }

// Err reports why the worker stopped; nil after Shutdown.
func (w *Worker) Err() error {
	<-w.done
	return w.doneErr
}

func (w *Worker) finish(err error) {
	w.doneOnce.Do(func() {
		w.doneErr = err
		close(w.done)
	})
}

// Register makes the worker serve agentType, creating agents with factory,
// and subscribes the type to its direct-addressing prefix "<type>:"
// (AWP-SUB-011) and to subs. Called before Start it takes effect on
// connecting; afterwards it registers at once.
func (w *Worker) Register(ctx context.Context, agentType string, factory Factory, subs ...Subscription) error {
	w.mu.Lock()
	if _, dup := w.factories[agentType]; dup {
		w.mu.Unlock()
		return fmt.Errorf("agent type %q already registered", agentType)
	}
	w.factories[agentType] = factory
	w.types = append(w.types, agentType)
	conn := w.conn
	w.mu.Unlock()
	if conn != nil {
		if _, err := w.client.RegisterAgent(ctx, &pb.RegisterAgentRequest{Type: agentType}); err != nil {
			return fmt.Errorf("register %q: %w", agentType, err)
		}
	}
	all := append([]Subscription{PrefixSubscription(agentType+":", agentType)}, subs...)
	for _, s := range all {
		if s.AgentType == "" {
			s.AgentType = agentType
		}
		if err := w.AddSubscription(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// AddSubscription adds s (an id is chosen when empty). Called before Start it
// takes effect on connecting.
func (w *Worker) AddSubscription(ctx context.Context, s Subscription) error {
	if s.ID == "" {
		s.ID = newUUID()
	}
	if s.Topic == "" || s.AgentType == "" {
		return fmt.Errorf("subscription %s: empty topic or agent type", s.ID)
	}
	w.mu.Lock()
	w.subs = append(w.subs, s)
	conn := w.conn
	w.mu.Unlock()
	if conn != nil {
		if _, err := w.client.AddSubscription(ctx, &pb.AddSubscriptionRequest{Subscription: s.proto()}); err != nil {
			return fmt.Errorf("add subscription %s: %w", s.ID, err)
		}
	}
	return nil
}

// Start connects to the host, registers every agent type and subscription,
// and returns once they have succeeded (AWP-CONN-007). With Reconnect it
// retries unavailable hosts until ctx ends.
func (w *Worker) Start(ctx context.Context) error {
	if w.cc != nil {
		return errors.New("worker already started")
	}
	creds, err := w.cfg.transportCredentials()
	if err != nil {
		return err
	}
	cc, err := grpc.NewClient(w.cfg.Address,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		grpc.WithChainUnaryInterceptor(w.unaryMetadata),
		grpc.WithChainStreamInterceptor(w.streamMetadata),
	)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", w.cfg.Address, err)
	}
	w.cc = cc
	w.client = pb.NewAgentRpcServiceClient(cc)
	w.accepting.Store(true)
	delay := backoffFirst
	for {
		err := w.connect(ctx)
		if err == nil {
			go w.supervise()
			return nil
		}
		if !w.cfg.Reconnect || !retryable(err) {
			_ = cc.Close()
			return err
		}
		w.log.Info("connect failed; retrying", "address", w.cfg.Address, "err", err)
		if !sleep(ctx, jitter(delay)) {
			_ = cc.Close()
			return fmt.Errorf("connect to %s: %w (last error: %v)", w.cfg.Address, ctx.Err(), err)
		}
		delay = min(delay*2, backoffCap)
	}
}

// Run starts the worker (giving up after Config.StartTimeout), calls ready
// once it is registered, and serves until ctx ends, when it drains with
// Shutdown and returns nil, or until the worker stops on its own, when it
// returns why. Pass a context from signal.NotifyContext to stop on SIGTERM.
func (w *Worker) Run(ctx context.Context, ready func()) error {
	startCtx, cancel := context.WithTimeout(ctx, w.cfg.StartTimeout)
	defer cancel()
	if err := w.Start(startCtx); err != nil {
		if ctx.Err() != nil {
			return nil // asked to stop before the worker started
		}
		return err
	}
	if ready != nil {
		ready()
	}
	select {
	case <-ctx.Done():
		w.Shutdown()
		return nil
	case <-w.Done():
		return w.Err()
	}
}

// outgoing adds the client-id (AWP-CONN-002) and bearer token (AWP-SEC-005)
// to every call.
func (w *Worker) outgoing(ctx context.Context) context.Context {
	ctx = metadata.AppendToOutgoingContext(ctx, "client-id", w.clientID)
	if w.cfg.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+w.cfg.Token)
	}
	return ctx
}

func (w *Worker) unaryMetadata(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(w.outgoing(ctx), method, req, reply, cc, opts...)
}

func (w *Worker) streamMetadata(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(w.outgoing(ctx), desc, cc, method, opts...)
}

// retryable reports whether a failed connect may succeed later: the host is
// unreachable or draining, or has not yet noticed our previous channel end
// (AWP-CONN-021).
func retryable(err error) bool {
	var reg *registrationError
	if errors.As(err, &reg) {
		// The host refused a type or subscription: retrying will not help.
		return status.Code(reg.err) == codes.Unavailable
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.AlreadyExists, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, errChannelClosed)
}

// connect opens the data channel with the hello, reads the welcome, opens the
// control channel, then registers every type and subscription.
func (w *Worker) connect(ctx context.Context) error {
	hello, err := proto.Marshal(&pb.ChannelHello{
		ProtocolVersion: 1,
		Capabilities:    w.caps,
		Implementation:  Implementation,
	})
	if err != nil {
		return err
	}
	streamCtx, cancel := context.WithCancel(context.Background())
	stream, err := w.client.OpenChannel(metadata.AppendToOutgoingContext(streamCtx, helloKey, string(hello)))
	if err != nil {
		cancel()
		return fmt.Errorf("open channel: %w", err)
	}
	welcome, err := w.readWelcome(ctx, stream)
	if err != nil {
		cancel()
		return err
	}
	conn := newConnection(stream, cancel, welcome)
	go w.readLoop(conn)
	go conn.writeLoop()
	if welcome != nil && w.has(pb.Capability_CAPABILITY_STATE) {
		if err := w.openControl(streamCtx, conn); err != nil {
			conn.close(0)
			return err
		}
	}
	if err := w.registerAll(ctx); err != nil {
		conn.close(0)
		return err
	}
	if conn.isLost() {
		conn.cancel()
		return fmt.Errorf("%w during registration: %w", errChannelClosed, conn.lostErr)
	}
	w.mu.Lock()
	w.conn = conn
	close(w.connected)
	w.mu.Unlock()
	w.log.Info("connected", "address", w.cfg.Address, "client_id", w.clientID, "v1", welcome != nil)
	return nil
}

// readWelcome waits for the response header. A host that sends no welcome
// is a legacy host; one that ends the call reports its status here.
func (w *Worker) readWelcome(ctx context.Context, stream pb.AgentRpcService_OpenChannelClient) (*pb.ChannelWelcome, error) {
	type header struct{ md metadata.MD }
	got := make(chan header, 1)
	go func() {
		md, _ := stream.Header()
		got <- header{md}
	}()
	timer := time.NewTimer(welcomeWait)
	defer timer.Stop()
	select {
	case h := <-got:
		if h.md == nil { // the call ended before any header
			_, err := stream.Recv()
			return nil, fmt.Errorf("open channel: %w", err)
		}
		return parseWelcome(h.md)
	case <-timer.C:
		return nil, nil // a legacy host sends its header with its first frame
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (w *Worker) has(c pb.Capability) bool {
	for _, x := range w.caps {
		if x == c {
			return true
		}
	}
	return false
}

// registerAll registers every agent type and re-adds every subscription with
// its id (AWP-CONN-020).
func (w *Worker) registerAll(ctx context.Context) error {
	w.mu.Lock()
	types := append([]string(nil), w.types...)
	subs := append([]Subscription(nil), w.subs...)
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, unaryTimeout)
	defer cancel()
	for _, t := range types {
		if _, err := w.client.RegisterAgent(ctx, &pb.RegisterAgentRequest{Type: t}); err != nil {
			return &registrationError{what: fmt.Sprintf("register %q", t), err: err}
		}
	}
	for _, s := range subs {
		if _, err := w.client.AddSubscription(ctx, &pb.AddSubscriptionRequest{Subscription: s.proto()}); err != nil {
			return &registrationError{what: "add subscription " + s.ID, err: err}
		}
	}
	return nil
}

// registrationError is a RegisterAgent or AddSubscription the host refused.
type registrationError struct {
	what string
	err  error
}

func (e *registrationError) Error() string { return e.what + ": " + e.err.Error() }
func (e *registrationError) Unwrap() error { return e.err }

// supervise waits for the connection to end; it then fails the calls in
// flight and, with Reconnect, reconnects with exponential backoff and jitter.
func (w *Worker) supervise() {
	for {
		w.mu.Lock()
		conn := w.conn
		w.mu.Unlock()
		<-conn.lost
		w.dropConnection(conn)
		if w.stopping.Load() {
			return
		}
		w.log.Warn("lost the data channel", "address", w.cfg.Address, "err", conn.lostErr)
		conn.cancel()
		if !w.cfg.Reconnect {
			w.finish(fmt.Errorf("lost the data channel: %w", conn.lostErr))
			return
		}
		delay := backoffFirst
		for {
			if !sleep(w.handlerCtx, jitter(delay)) || w.stopping.Load() {
				return
			}
			err := w.connect(w.handlerCtx)
			if err == nil {
				break
			}
			w.log.Info("reconnect failed; retrying", "err", err)
			delay = min(delay*2, backoffCap)
		}
	}
}

// dropConnection forgets conn and fails every call sent on it
// (AWP-CONN-019).
func (w *Worker) dropConnection(conn *connection) {
	w.mu.Lock()
	if w.conn == conn {
		w.conn = nil
		w.connected = make(chan struct{})
	}
	var failed []*pendingCall
	for id, p := range w.pending {
		if p.conn == conn {
			failed = append(failed, p)
			delete(w.pending, id)
		}
	}
	w.mu.Unlock()
	for _, p := range failed {
		p.ch <- &pb.RpcResponse{
			Error:     "the data channel to the host was lost",
			ErrorCode: pb.ErrorCode_ERROR_CODE_TARGET_UNAVAILABLE,
		}
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Shutdown drains (AWP-CONN-017): it stops starting handlers, lets running
// ones finish within the configured grace, half-closes the channels and
// closes the connection.
func (w *Worker) Shutdown() {
	w.gate.Lock()
	w.accepting.Store(false)
	w.stopping.Store(true)
	w.gate.Unlock()
	w.dispatch.cancelQueued() // waiting requests are answered SHUTTING_DOWN
	finished := make(chan struct{})
	go func() {
		w.handlers.Wait()
		close(finished)
	}()
	grace := time.NewTimer(w.cfg.ShutdownGrace)
	select {
	case <-finished:
	case <-grace.C:
		w.log.Warn("handlers still running after the grace period")
	}
	grace.Stop()
	w.cancelHandler()
	w.mu.Lock()
	conn := w.conn
	w.mu.Unlock()
	if conn != nil {
		conn.close(time.Second)
		w.dropConnection(conn)
	}
	if w.cc != nil {
		_ = w.cc.Close()
	}
	w.finish(nil)
}

// current returns the live connection, waiting up to ctx for a reconnect.
func (w *Worker) current(ctx context.Context) (*connection, error) {
	for {
		w.mu.Lock()
		conn, connected := w.conn, w.connected
		w.mu.Unlock()
		if conn != nil {
			return conn, nil
		}
		if w.stopping.Load() || !w.cfg.Reconnect {
			return nil, &CallError{Code: pb.ErrorCode_ERROR_CODE_TARGET_UNAVAILABLE, Message: "not connected to the host"}
		}
		select {
		case <-connected:
		case <-ctx.Done():
			return nil, &CallError{Code: pb.ErrorCode_ERROR_CODE_TARGET_UNAVAILABLE, Message: "not connected to the host"}
		case <-w.handlerCtx.Done():
			return nil, &CallError{Code: pb.ErrorCode_ERROR_CODE_SHUTTING_DOWN, Message: "the worker is stopping"}
		}
	}
}

// Publish publishes msg on topic with no sending agent (AWP-PUB-001).
func (w *Worker) Publish(ctx context.Context, topic TopicID, msg Payload) error {
	return w.publish(ctx, topic, msg, nil)
}

func (w *Worker) publish(ctx context.Context, topic TopicID, msg Payload, sender *AgentID) error {
	ev, err := buildCloudEvent(msg, topic, sender)
	if err != nil {
		return err
	}
	conn, err := w.current(ctx)
	if err != nil {
		return err
	}
	return conn.send(ctx, &pb.OpenChannelRequest{Message: &pb.OpenChannelRequest_CloudEvent{CloudEvent: ev}})
}

// Call sends msg to target as an RPC and waits for the reply. timeout (0
// means the host's default) travels in timeout_ms and, with a margin, bounds
// the local wait (AWP-RPC-012); a ctx deadline shortens it. An error
// response is returned as a *CallError (AWP-RPC-022).
func (w *Worker) Call(ctx context.Context, target AgentID, msg Payload, timeout time.Duration) (Payload, error) {
	return w.call(ctx, nil, target, msg, timeout)
}

func (w *Worker) call(ctx context.Context, source *AgentID, target AgentID, msg Payload, timeout time.Duration) (Payload, error) {
	conn, err := w.current(ctx)
	if err != nil {
		return Payload{}, err
	}
	if timeout <= 0 {
		timeout = defaultRPCTimeout
		if ms := conn.welcome.GetDefaultRpcTimeoutMs(); ms > 0 {
			timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	req := &pb.RpcRequest{
		RequestId: w.ids.newID(),
		Target:    target.proto(),
		Payload:   msg.proto(),
		TimeoutMs: uint64(max(timeout.Milliseconds(), 1)),
	}
	if source != nil {
		req.Source = source.proto()
	}
	p := &pendingCall{conn: conn, ch: make(chan *pb.RpcResponse, 1)}
	w.mu.Lock()
	w.pending[req.RequestId] = p
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.pending, req.RequestId)
		w.mu.Unlock()
	}()
	if err := conn.send(ctx, &pb.OpenChannelRequest{Message: &pb.OpenChannelRequest_Request{Request: req}}); err != nil {
		return Payload{}, &CallError{Code: pb.ErrorCode_ERROR_CODE_TARGET_UNAVAILABLE, Message: err.Error()}
	}
	local := time.NewTimer(timeout + localTimeoutMargin)
	defer local.Stop()
	select {
	case r := <-p.ch:
		if err := responseError(r); err != nil {
			return Payload{}, err
		}
		return payloadFromProto(r.GetPayload()), nil
	case <-local.C:
		return Payload{}, &CallError{
			Code:    pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
			Message: fmt.Sprintf("no response from %s within %v", target, timeout+localTimeoutMargin),
		}
	case <-ctx.Done():
		return Payload{}, &CallError{Code: pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, Message: ctx.Err().Error()}
	}
}
