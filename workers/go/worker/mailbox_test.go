package worker

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a log the dispatcher's goroutines append to.
type recorder struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func newRecorder() *recorder { return &recorder{added: make(chan struct{}, 64)} }

func (r *recorder) add(line string) {
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	r.added <- struct{}{}
}

// waitFor waits until line is logged and returns the log.
func (r *recorder) waitFor(t *testing.T, line string) []string {
	t.Helper()
	deadline := time.After(testWait)
	for {
		r.mu.Lock()
		lines := slices.Clone(r.lines)
		r.mu.Unlock()
		if slices.Contains(lines, line) {
			return lines
		}
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("%q never logged: %v", line, lines)
		}
	}
}

func gated(rec *recorder, name string, gate <-chan struct{}) *job {
	return &job{run: func(*run) {
		rec.add("start " + name)
		<-gate
		rec.add("end " + name)
	}, cancel: func() { rec.add("cancel " + name) }}
}

func TestDispatcherRunsOneMessagePerAgentInOrder(t *testing.T) {
	rec := newRecorder()
	d := newDispatcher(4, 10)
	gate := make(chan struct{})
	a := AgentID{"t", "a"}
	for _, name := range []string{"a1", "a2", "a3"} {
		if !d.submit(a, gated(rec, name, gate), false) {
			t.Fatal("refused")
		}
	}
	rec.waitFor(t, "start a1")
	close(gate)
	lines := rec.waitFor(t, "end a3")
	want := []string{"start a1", "end a1", "start a2", "end a2", "start a3", "end a3"}
	if !slices.Equal(lines, want) {
		t.Fatalf("log %v, want %v", lines, want)
	}
}

func TestDispatcherLendsTheSlotOfAWaitingCaller(t *testing.T) {
	rec := newRecorder()
	d := newDispatcher(1, 10)
	reply := make(chan struct{})
	calleeGate := make(chan struct{})
	caller := &job{run: func(r *run) {
		rec.add("caller start")
		resume := d.beginCall(r)
		<-reply
		resume()
		rec.add("caller goes on")
	}}
	d.submit(AgentID{"t", "caller"}, caller, false)
	rec.waitFor(t, "caller start")
	d.submit(AgentID{"t", "callee"}, gated(rec, "callee", calleeGate), false)
	d.submit(AgentID{"t", "other"}, gated(rec, "other", nil), false)
	rec.waitFor(t, "start callee")
	close(reply) // the reply arrives while the callee holds the only slot
	for deadline := time.Now().Add(testWait); ; time.Sleep(time.Millisecond) {
		d.mu.Lock()
		waiting := len(d.resumers)
		d.mu.Unlock()
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the caller did not wait for a slot")
		}
	}
	close(calleeGate)
	lines := rec.waitFor(t, "start other")
	want := []string{"caller start", "start callee", "end callee", "caller goes on", "start other"}
	if !slices.Equal(lines, want) {
		t.Fatalf("log %v, want %v", lines, want)
	}
}

func TestDispatcherCancelsWaitingMessages(t *testing.T) {
	rec := newRecorder()
	d := newDispatcher(1, 1)
	gate := make(chan struct{})
	d.submit(AgentID{"t", "a"}, gated(rec, "running", gate), false)
	rec.waitFor(t, "start running")
	if !d.submit(AgentID{"t", "b"}, gated(rec, "waiting", gate), false) {
		t.Fatal("refused a message the queue has room for")
	}
	if d.submit(AgentID{"t", "c"}, gated(rec, "refused", gate), false) {
		t.Fatal("took a request past the bound")
	}
	if !d.submit(AgentID{"t", "d"}, gated(rec, "event", gate), true) || d.pending() != 3 {
		t.Fatalf("an event past the bound was not kept; pending %d", d.pending())
	}
	d.cancelQueued()
	rec.waitFor(t, "cancel event")
	close(gate)
	rec.waitFor(t, "end running")
}
