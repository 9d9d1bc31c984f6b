package worker

import (
	"strings"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
)

// Subscription maps matching topics to an agent type (spec section 8). A
// prefix subscription matches every topic type starting with Topic; an exact
// one matches the topic type Topic only.
type Subscription struct {
	ID        string
	Topic     string
	Prefix    bool
	AgentType string
}

// TypeSubscription matches topics of exactly topicType.
func TypeSubscription(topicType, agentType string) Subscription {
	return Subscription{ID: newUUID(), Topic: topicType, AgentType: agentType}
}

// PrefixSubscription matches topics whose type starts with prefix.
func PrefixSubscription(prefix, agentType string) Subscription {
	return Subscription{ID: newUUID(), Topic: prefix, Prefix: true, AgentType: agentType}
}

// Matches reports whether the subscription matches topic type t (byte-wise,
// AWP-SUB-010).
func (s Subscription) Matches(t string) bool {
	if s.Prefix {
		return strings.HasPrefix(t, s.Topic)
	}
	return t == s.Topic
}

func (s Subscription) proto() *pb.Subscription {
	out := &pb.Subscription{Id: s.ID}
	if s.Prefix {
		out.Subscription = &pb.Subscription_TypePrefixSubscription{
			TypePrefixSubscription: &pb.TypePrefixSubscription{TopicTypePrefix: s.Topic, AgentType: s.AgentType},
		}
	} else {
		out.Subscription = &pb.Subscription_TypeSubscription{
			TypeSubscription: &pb.TypeSubscription{TopicType: s.Topic, AgentType: s.AgentType},
		}
	}
	return out
}

// recipients returns the distinct agents that subs address for topic, in
// subscription order, leaving out the event's sender (AWP-SUB-012).
func recipients(subs []Subscription, topic TopicID, sender *AgentID) []AgentID {
	var out []AgentID
	seen := map[AgentID]bool{}
	for _, s := range subs {
		if !s.Matches(topic.Type) {
			continue
		}
		id := AgentID{Type: s.AgentType, Key: topic.Source}
		if seen[id] || (sender != nil && *sender == id) {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}
