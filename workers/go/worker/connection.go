package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// Metadata keys of the handshake (AWP-VER-010, AWP-VER-013).
const (
	helloKey   = "agentworker-hello-bin"
	welcomeKey = "agentworker-welcome-bin"
)

const (
	defaultBatchLimit   = 1024
	defaultMessageBytes = 4 << 20
	outboundQueue       = 1024
	// batchOverhead leaves room for the frame and field headers of a batch.
	batchOverhead = 64
)

var errChannelClosed = errors.New("data channel closed")

// connection is one data channel and the writer that owns its send side.
type connection struct {
	stream  pb.AgentRpcService_OpenChannelClient
	cancel  context.CancelFunc
	welcome *pb.ChannelWelcome // nil for a legacy host

	out  chan *pb.OpenChannelRequest
	quit chan struct{} // closed to half-close after flushing out
	done chan struct{} // closed when the writer has finished

	lostOnce sync.Once
	lost     chan struct{} // closed when the channel ends
	lostErr  error

	quitOnce sync.Once

	ctlMu     sync.Mutex
	ctl       pb.AgentRpcService_OpenControlChannelClient
	ctlClosed bool
}

func (c *connection) setControl(s pb.AgentRpcService_OpenControlChannelClient) {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	c.ctl = s
}

// sendControl writes a control frame; gRPC streams allow one sender at a time.
func (c *connection) sendControl(f *pb.OpenControlChannelRequest) error {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	if c.ctl == nil || c.ctlClosed {
		return errChannelClosed
	}
	return c.ctl.Send(f)
}

func (c *connection) closeControl() {
	c.ctlMu.Lock()
	defer c.ctlMu.Unlock()
	if c.ctl != nil && !c.ctlClosed {
		c.ctlClosed = true
		_ = c.ctl.CloseSend()
	}
}

// parseWelcome reads the host's welcome from the response header; nil means
// a legacy host (AWP-VER-015).
func parseWelcome(md metadata.MD) (*pb.ChannelWelcome, error) {
	vals := md.Get(welcomeKey)
	if len(vals) == 0 {
		return nil, nil
	}
	var w pb.ChannelWelcome
	if err := proto.Unmarshal([]byte(vals[0]), &w); err != nil {
		return nil, fmt.Errorf("welcome does not decode: %w", err)
	}
	if w.GetProtocolVersion() != 1 {
		return nil, nil // another major version: a legacy host (AWP-VER-018)
	}
	return &w, nil
}

func newConnection(stream pb.AgentRpcService_OpenChannelClient, cancel context.CancelFunc, welcome *pb.ChannelWelcome) *connection {
	return &connection{
		stream:  stream,
		cancel:  cancel,
		welcome: welcome,
		out:     make(chan *pb.OpenChannelRequest, outboundQueue),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		lost:    make(chan struct{}),
	}
}

// inForce reports whether c is listed by the welcome, and so by the hello
// too (AWP-VER-012).
func (c *connection) inForce(capability pb.Capability) bool {
	return c.welcome != nil && slices.Contains(c.welcome.GetCapabilities(), capability)
}

func (c *connection) markLost(err error) {
	c.lostOnce.Do(func() {
		c.lostErr = err
		close(c.lost)
	})
}

func (c *connection) isLost() bool {
	select {
	case <-c.lost:
		return true
	default:
		return false
	}
}

// send queues a frame for the writer, in order; it blocks while the queue is
// full (backpressure) and fails once the channel is closing or lost.
func (c *connection) send(ctx context.Context, f *pb.OpenChannelRequest) error {
	select {
	case <-c.quit:
		return errChannelClosed
	case <-c.lost:
		return errChannelClosed
	default:
	}
	select {
	case c.out <- f:
		return nil
	case <-c.quit:
		return errChannelClosed
	case <-c.lost:
		return errChannelClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop owns the stream's send side. With CAPABILITY_BATCHING in force it
// sends what is queued at the moment the writer is ready, as one batch, and
// never waits to fill one (AWP-BAT-004).
func (c *connection) writeLoop() {
	defer close(c.done)
	batching := c.inForce(pb.Capability_CAPABILITY_BATCHING)
	limit := int(c.welcome.GetMaxBatchMessages())
	if limit <= 0 {
		limit = defaultBatchLimit
	}
	maxBytes := int(c.welcome.GetMaxMessageBytes())
	if maxBytes <= 0 {
		maxBytes = defaultMessageBytes
	}
	var held *pb.OpenChannelRequest // taken from the queue but not fitting the last batch
	for {
		first := held
		held = nil
		if first == nil {
			select {
			case first = <-c.out:
			case <-c.quit:
				c.flush()
				return
			case <-c.lost:
				return
			}
		}
		frame := first
		if batching {
			frame, held = c.gather(first, limit, maxBytes)
		}
		if err := c.stream.Send(frame); err != nil {
			c.markLost(err)
			return
		}
	}
}

// gather takes the frames already queued behind first, up to the host's
// limits, and returns them as one frame; a frame that does not fit is
// returned as held for the next write.
func (c *connection) gather(first *pb.OpenChannelRequest, limit, maxBytes int) (frame, held *pb.OpenChannelRequest) {
	frames := []*pb.OpenChannelRequest{first}
	size := proto.Size(first) + batchOverhead
	for len(frames) < limit {
		var next *pb.OpenChannelRequest
		select {
		case next = <-c.out:
		default:
		}
		if next == nil {
			break
		}
		n := proto.Size(next) + batchOverhead
		if size+n > maxBytes {
			held = next
			break
		}
		size += n
		frames = append(frames, next)
	}
	if len(frames) == 1 {
		return first, held
	}
	batch := &pb.OpenChannelRequest_Batch{Messages: frames}
	return &pb.OpenChannelRequest{Message: &pb.OpenChannelRequest_Batch_{Batch: batch}}, held
}

// flush writes what is still queued, one frame at a time, then half-closes.
func (c *connection) flush() {
	for {
		select {
		case f := <-c.out:
			if err := c.stream.Send(f); err != nil {
				c.markLost(err)
				return
			}
		default:
			_ = c.stream.CloseSend()
			return
		}
	}
}

// close flushes the queue, half-closes the channel and waits up to grace for
// the host to end it, then cancels the stream.
func (c *connection) close(grace time.Duration) {
	c.quitOnce.Do(func() { close(c.quit) })
	c.closeControl()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	select {
	case <-c.done:
	case <-ctx.Done():
	}
	select {
	case <-c.lost:
	case <-ctx.Done():
	}
	c.cancel()
	c.markLost(errChannelClosed)
}
