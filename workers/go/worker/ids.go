package worker

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"sync/atomic"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
)

// AgentID names one agent instance: its type and a key within the type.
type AgentID struct {
	Type string
	Key  string
}

// String returns "type/key", the form used in control-channel destinations.
func (id AgentID) String() string { return id.Type + "/" + id.Key }

func (id AgentID) proto() *pb.AgentId { return &pb.AgentId{Type: id.Type, Key: id.Key} }

func agentIDFromProto(p *pb.AgentId) AgentID {
	return AgentID{Type: p.GetType(), Key: p.GetKey()}
}

// TopicID names a topic: its type (what the event is about) and its source
// (the context, such as a conversation).
type TopicID struct {
	Type   string
	Source string
}

// requestIDs allocates request ids. An id is never reused by one allocator,
// so ids are unique among the requests in flight on any connection the
// allocator serves (AWP-RPC-001).
type requestIDs struct {
	next atomic.Uint64
}

func (r *requestIDs) newID() string {
	return strconv.FormatUint(r.next.Add(1), 10)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("worker: no randomness: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
