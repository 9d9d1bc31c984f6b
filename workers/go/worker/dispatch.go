package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	cepb "github.com/agentworker/agentworker/gen/go/agentworker/cloudevents/v1"
	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
)

// readLoop reads the data channel until it ends, handling frames in order
// (AWP-CONN-011).
func (w *Worker) readLoop(conn *connection) {
	for {
		frame, err := conn.stream.Recv()
		if err != nil {
			conn.markLost(err)
			return
		}
		w.onFrame(conn, frame, true)
	}
}

func (w *Worker) onFrame(conn *connection, frame *pb.OpenChannelResponse, top bool) {
	switch m := frame.GetMessage().(type) {
	case *pb.OpenChannelResponse_Request:
		w.onRequest(conn, m.Request)
	case *pb.OpenChannelResponse_Response:
		w.onResponse(m.Response)
	case *pb.OpenChannelResponse_CloudEvent:
		w.onEvent(conn, m.CloudEvent)
	case *pb.OpenChannelResponse_Notice:
		w.onNotice(m.Notice)
	case *pb.OpenChannelResponse_Batch_:
		if !top {
			w.log.Warn("ignoring a nested batch")
			return
		}
		// In order, exactly as if sent one by one (AWP-BAT-003).
		for _, inner := range m.Batch.GetMessages() {
			w.onFrame(conn, inner, false)
		}
	default:
		// A case from a later version: ignore it, keep the channel (AWP-CONN-013).
		w.log.Warn("ignoring a frame with no known case")
	}
}

// onResponse hands a response to its caller by request id alone, in any
// order (AWP-RPC-007); one nobody waits for is discarded (AWP-RPC-008).
func (w *Worker) onResponse(r *pb.RpcResponse) {
	w.mu.Lock()
	p, ok := w.pending[r.GetRequestId()]
	delete(w.pending, r.GetRequestId())
	w.mu.Unlock()
	if !ok {
		w.log.Info("discarding a response for no request in flight", "request_id", r.GetRequestId())
		return
	}
	p.ch <- r
}

// onNotice logs a notice, never fatal (AWP-ERR-011). A notice's request_id is
// the host's id of a request it delivered to us (AWP-RPC-005), not one of our
// own calls, so it never ends a pending call (AWP-ERR-022).
func (w *Worker) onNotice(n *pb.Notice) {
	w.log.Warn("host notice", "code", n.GetCode().String(), "message", n.GetMessage(),
		"event_id", n.GetEventId(), "request_id", n.GetRequestId())
	if w.cfg.OnNotice != nil {
		w.cfg.OnNotice(n)
	}
}

// agent returns the instance for id, creating it on first use
// (AWP-REG-004).
func (w *Worker) agent(id AgentID) (Agent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a, ok := w.agents[id]; ok {
		return a, nil
	}
	factory, ok := w.factories[id.Type]
	if !ok {
		return nil, &CallError{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_TARGET, Message: fmt.Sprintf("agent type %q is not served here", id.Type)}
	}
	a, err := factory(id)
	if err != nil {
		return nil, fmt.Errorf("create agent %s: %w", id, err)
	}
	w.agents[id] = a
	return a, nil
}

func (w *Worker) serves(agentType string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.factories[agentType]
	return ok
}

func errorResponse(id string, code pb.ErrorCode, msg string) *pb.RpcResponse {
	return &pb.RpcResponse{RequestId: id, Error: msg, ErrorCode: code}
}

// begin counts a message about to be queued or started; false once
// shutdown has begun (AWP-CONN-017).
func (w *Worker) begin() bool {
	w.gate.RLock()
	defer w.gate.RUnlock()
	if !w.accepting.Load() {
		return false
	}
	w.handlers.Add(1)
	return true
}

// onRequest hands a request to its agent's mailbox; it never waits for a
// handler slot (AWP-FLOW-030). A request the full inbound queue cannot take
// is answered OVERLOADED (AWP-FLOW-031).
func (w *Worker) onRequest(conn *connection, req *pb.RpcRequest) {
	rid := req.GetRequestId()
	target := agentIDFromProto(req.GetTarget())
	if !w.serves(target.Type) {
		w.respond(conn, errorResponse(rid, pb.ErrorCode_ERROR_CODE_UNKNOWN_TARGET,
			fmt.Sprintf("agent type %q is not served here", target.Type)))
		return
	}
	if !w.begin() {
		w.respond(conn, errorResponse(rid, pb.ErrorCode_ERROR_CODE_SHUTTING_DOWN, "worker is shutting down"))
		return
	}
	// The deadline counts from arrival, also while the request waits
	// (AWP-RPC-013, AWP-FLOW-033).
	ctx, cancel := w.handlerCtx, context.CancelFunc(func() {})
	if ms := req.GetTimeoutMs(); ms > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	}
	j := &job{
		run: func(r *run) {
			defer w.handlers.Done()
			defer cancel()
			w.respond(conn, w.handleRequest(ctx, r, target, req)) // exactly once, same id (AWP-RPC-006)
		},
		cancel: func() {
			defer w.handlers.Done()
			cancel()
			w.respond(conn, errorResponse(rid, pb.ErrorCode_ERROR_CODE_SHUTTING_DOWN, "worker is shutting down"))
		},
	}
	if !w.dispatch.submit(target, j, false) {
		w.handlers.Done()
		cancel()
		w.overloaded.Add(1)
		w.respond(conn, errorResponse(rid, pb.ErrorCode_ERROR_CODE_OVERLOADED,
			fmt.Sprintf("the worker's inbound queue is full (%d messages)", w.dispatch.maxQueued)))
	}
}

func (w *Worker) respond(conn *connection, r *pb.RpcResponse) {
	ctx, cancel := context.WithTimeout(context.Background(), unaryTimeout)
	defer cancel()
	if err := conn.send(ctx, &pb.OpenChannelRequest{Message: &pb.OpenChannelRequest_Response{Response: r}}); err != nil {
		w.log.Info("cannot answer a request", "request_id", r.GetRequestId(), "err", err)
	}
}

// handleRequest runs the target agent's handler and builds the one response
// (AWP-RPC-020, AWP-RPC-021).
func (w *Worker) handleRequest(ctx context.Context, r *run, target AgentID, req *pb.RpcRequest) *pb.RpcResponse {
	id := req.GetRequestId()
	if ctx.Err() != nil { // it waited past its deadline (AWP-FLOW-033)
		return errorResponse(id, pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
			fmt.Sprintf("request waited past its %d ms deadline before its handler could start", req.GetTimeoutMs()))
	}
	a, err := w.agent(target)
	if err != nil {
		var ce *CallError
		if errors.As(err, &ce) {
			return errorResponse(id, ce.Code, ce.Message)
		}
		return errorResponse(id, pb.ErrorCode_ERROR_CODE_HANDLER_FAILED, err.Error())
	}
	mc := &Context{Self: target, RequestID: id, Metadata: req.GetMetadata(), w: w, run: r}
	if req.Source != nil {
		s := agentIDFromProto(req.Source)
		mc.Sender = &s
	}
	reply, err := w.runRequest(ctx, a, mc, payloadFromProto(req.GetPayload()))
	switch {
	case err == nil:
		if reply.DataType == "" && reply.ContentType == "" {
			reply = nonePayload()
		}
		return &pb.RpcResponse{RequestId: id, Payload: reply.proto()}
	case errors.Is(err, ErrUnsupportedMessage):
		return errorResponse(id, pb.ErrorCode_ERROR_CODE_UNSUPPORTED_MESSAGE, err.Error())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errorResponse(id, pb.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED,
			fmt.Sprintf("handler passed the request's %d ms deadline: %v", req.GetTimeoutMs(), err))
	default:
		msg := err.Error()
		if msg == "" {
			msg = "handler failed"
		}
		return errorResponse(id, pb.ErrorCode_ERROR_CODE_HANDLER_FAILED, msg)
	}
}

// runRequest calls the handler, turning a panic into a handler failure.
func (w *Worker) runRequest(ctx context.Context, a Agent, mc *Context, p Payload) (reply Payload, err error) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("handler panicked", "agent", mc.Self.String(), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return a.OnRequest(ctx, mc, p)
}

// onEvent delivers an event to each distinct local agent a subscription of
// this worker addresses, never to its sender (AWP-SUB-012). An event that
// does not decode is logged and counted (AWP-PUB-022).
func (w *Worker) onEvent(conn *connection, ce *cepb.CloudEvent) {
	topic := TopicID{Type: ce.GetType(), Source: ce.GetSource()}
	ev, err := parseCloudEvent(ce)
	w.mu.Lock()
	subs := w.subs
	w.mu.Unlock()
	targets := recipients(subs, topic, ev.Sender)
	if len(targets) == 0 {
		return
	}
	if err != nil {
		w.undecodable.Add(1)
		w.log.Warn("cannot decode an event", "event_id", ce.GetId(), "err", err)
		return
	}
	for _, id := range targets {
		if !w.begin() {
			w.log.Info("shutting down: not delivering an event", "event_id", ev.ID)
			return
		}
		j := &job{
			run: func(r *run) {
				defer w.handlers.Done()
				a, err := w.agent(id)
				if err != nil {
					w.log.Error("cannot deliver an event", "event_id", ev.ID, "agent", id.String(), "err", err)
					return
				}
				w.runEvent(a, &Context{Self: id, Sender: ev.Sender, w: w, run: r}, ev)
			},
			cancel: func() {
				defer w.handlers.Done()
				w.log.Info("shutting down: not delivering an event", "event_id", ev.ID, "agent", id.String())
			},
		}
		// An event is never dropped: past the queue's bound it still queues
		// (AWP-FLOW-032).
		w.dispatch.submit(id, j, true)
	}
	if w.dispatch.full() {
		// Stop reading until the queue has room (AWP-FLOW-032).
		w.readPauses.Add(1)
		w.log.Info("inbound queue full: not reading the data channel until it has room")
		w.dispatch.waitRoom(conn.lost)
	}
}

func (w *Worker) runEvent(a Agent, mc *Context, ev Event) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("event handler panicked", "agent", mc.Self.String(), "event_id", ev.ID, "panic", r)
		}
	}()
	if err := a.OnEvent(w.handlerCtx, mc, ev); err != nil {
		if errors.Is(err, ErrUnsupportedMessage) {
			w.undecodable.Add(1)
		}
		w.log.Warn("event handler failed", "agent", mc.Self.String(), "event_id", ev.ID, "err", err)
	}
}

// UndecodableEvents counts received events that could not be decoded.
func (w *Worker) UndecodableEvents() uint64 { return w.undecodable.Load() }

// Overloaded counts requests answered OVERLOADED because the inbound queue
// was full (AWP-FLOW-031).
func (w *Worker) Overloaded() uint64 { return w.overloaded.Load() }

// ReadPauses counts the times the worker stopped reading its data channel
// because an event filled the inbound queue (AWP-FLOW-032).
func (w *Worker) ReadPauses() uint64 { return w.readPauses.Load() }

// Pending counts the handlers started and not ended plus the messages
// waiting for their agent or a slot.
func (w *Worker) Pending() int { return w.dispatch.pending() }
