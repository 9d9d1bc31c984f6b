package worker

import (
	"context"
	"time"
)

// Agent handles the messages addressed to one AgentID. The worker creates
// one Agent per AgentID, on the first message addressed to it, and delivers
// every later message for that AgentID to the same instance (AWP-REG-004).
//
// The worker hands one agent one message at a time, requests and events
// alike, in the order it received them (AWP-CONN-040), each on a goroutine
// of its own; different agents run concurrently. An agent's fields need no
// lock, except against SaveState and LoadState, which come over the control
// channel, and goroutines the agent starts itself. An agent that calls
// itself, directly or through other agents, waits behind its own handler
// until the call's deadline.
type Agent interface {
	// OnRequest handles an RPC and returns the reply. A zero Payload means
	// "no reply" and is sent as JSON null of type NoneType. An error that
	// matches ErrUnsupportedMessage (see Unsupported and the Decode methods
	// of Payload) is answered with ERROR_CODE_UNSUPPORTED_MESSAGE; any other
	// error with ERROR_CODE_HANDLER_FAILED (AWP-RPC-021). ctx ends at the
	// request's deadline.
	OnRequest(ctx context.Context, mc *Context, msg Payload) (Payload, error)
	// OnEvent handles a published event. Errors are logged.
	OnEvent(ctx context.Context, mc *Context, ev Event) error
}

// Stateful is implemented by agents whose state the host may save and load
// over the control channel (CAPABILITY_STATE, AWP-CTL-001).
type Stateful interface {
	SaveState() (string, error)
	LoadState(state string) error
}

// Factory creates the agent for id.
type Factory func(id AgentID) (Agent, error)

// Context describes the message being handled and lets the agent publish
// and call as itself.
type Context struct {
	// Self is the handling agent's id.
	Self AgentID
	// Sender is the calling or publishing agent, when the message names one.
	Sender *AgentID
	// RequestID is the request's id (RPCs only).
	RequestID string
	// Metadata is the request's metadata (RPCs only).
	Metadata map[string]string

	w   *Worker
	run *run // the handler this message runs in
}

// Publish publishes msg on topic with this agent as the sender.
func (c *Context) Publish(ctx context.Context, topic TopicID, msg Payload) error {
	self := c.Self
	return c.w.publish(ctx, topic, msg, &self)
}

// Call sends msg to target as an RPC from this agent; see Worker.Call.
// While it waits for the reply, the handler gives up its slot so that other
// messages, including ones for the agents it calls on this worker, can run;
// it takes one again, ahead of waiting messages, before Call returns
// (AWP-FLOW-030).
func (c *Context) Call(ctx context.Context, target AgentID, msg Payload, timeout time.Duration) (Payload, error) {
	self := c.Self
	resume := c.w.dispatch.beginCall(c.run)
	defer resume()
	return c.w.call(ctx, &self, target, msg, timeout)
}
