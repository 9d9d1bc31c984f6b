package worker

import (
	"reflect"
	"regexp"
	"sync"
	"testing"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
)

func TestSubscriptionMatching(t *testing.T) {
	exact := TypeSubscription("chat", "writer")
	prefix := PrefixSubscription("chat.", "editor")
	cases := []struct {
		sub   Subscription
		topic string
		want  bool
	}{
		{exact, "chat", true},
		{exact, "chat.x", false},
		{exact, "Chat", false},
		{exact, "", false},
		{prefix, "chat.", true},
		{prefix, "chat.room", true},
		{prefix, "chat", false},
		{prefix, "CHAT.room", false},
		{PrefixSubscription("é", "t"), "\xc3\xa9x", true}, // byte-wise
	}
	for _, c := range cases {
		if got := c.sub.Matches(c.topic); got != c.want {
			t.Errorf("%+v.Matches(%q) = %v, want %v", c.sub, c.topic, got, c.want)
		}
	}
}

func TestRecipientsAreDistinctOrderedAndSkipTheSender(t *testing.T) {
	subs := []Subscription{
		TypeSubscription("t.a", "x"),
		PrefixSubscription("t.", "y"),
		PrefixSubscription("t.", "x"), // same agent as the first: delivered once
		PrefixSubscription("u.", "z"),
	}
	got := recipients(subs, TopicID{Type: "t.a", Source: "s"}, nil)
	want := []AgentID{{"x", "s"}, {"y", "s"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("recipients = %v, want %v", got, want)
	}
	sender := AgentID{"x", "s"}
	got = recipients(subs, TopicID{Type: "t.a", Source: "s"}, &sender)
	if !reflect.DeepEqual(got, []AgentID{{"y", "s"}}) {
		t.Fatalf("recipients with sender = %v", got)
	}
	if got := recipients(subs, TopicID{Type: "v", Source: "s"}, nil); len(got) != 0 {
		t.Fatalf("recipients of an unmatched topic = %v", got)
	}
}

func TestSubscriptionProto(t *testing.T) {
	s := PrefixSubscription("a:", "a").proto()
	if s.GetId() == "" || s.GetTypePrefixSubscription().GetTopicTypePrefix() != "a:" ||
		s.GetTypePrefixSubscription().GetAgentType() != "a" {
		t.Fatalf("prefix subscription = %v", s)
	}
	e := TypeSubscription("b", "c").proto()
	if e.GetTypeSubscription().GetTopicType() != "b" || e.GetTypeSubscription().GetAgentType() != "c" {
		t.Fatalf("type subscription = %v", e)
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewUUIDIsARandomVersion4UUID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newUUID()
		if !uuidPattern.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q repeated", id)
		}
		seen[id] = true
	}
}

func TestRequestIDsAreUniqueAcrossGoroutines(t *testing.T) {
	var ids requestIDs
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				id := ids.newID()
				mu.Lock()
				if id == "" || seen[id] {
					t.Errorf("request id %q empty or repeated", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 8000 {
		t.Fatalf("%d ids, want 8000", len(seen))
	}
}

func TestAgentIDConversions(t *testing.T) {
	id := AgentID{Type: "t", Key: "k"}
	if id.String() != "t/k" {
		t.Fatalf("String = %q", id.String())
	}
	if back := agentIDFromProto(id.proto()); back != id {
		t.Fatalf("round trip = %v", back)
	}
	if agentIDFromProto((*pb.AgentId)(nil)) != (AgentID{}) {
		t.Fatal("a nil AgentId is not empty")
	}
}
