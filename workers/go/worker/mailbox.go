package worker

import "sync"

// job is one message for one agent.
type job struct {
	// run runs the handler and answers the message, on its own goroutine.
	run func(r *run)
	// cancel is called instead of run when the message will not run (the
	// worker stops).
	cancel func()
}

// run is one started handler. It holds a slot except while it waits for
// its own calls.
type run struct {
	slot  bool
	calls int
	ended bool
	wake  chan struct{} // closed when a waiting handler gets its slot back
}

// mailbox holds one agent's waiting messages in arrival order and its
// running handler, at most one (AWP-CONN-040).
type mailbox struct {
	jobs    []*job
	current *run
}

// dispatcher runs inbound messages: one mailbox per agent, at most
// maxRunning handlers holding a slot, at most maxQueued messages waiting
// (AWP-CONN-040, AWP-CONN-041, AWP-FLOW-030..032). The reader hands it
// messages and never waits for a slot.
type dispatcher struct {
	maxRunning, maxQueued int

	mu       sync.Mutex
	boxes    map[AgentID]*mailbox
	ready    []AgentID // agents with messages waiting and no handler, in order
	resumers []*run    // handlers whose calls ended, waiting for a slot; served first
	running  int
	parked   int
	queued   int
	room     chan struct{} // closed when the queue gets room; nil while nobody waits
}

func newDispatcher(maxRunning, maxQueued int) *dispatcher {
	return &dispatcher{maxRunning: maxRunning, maxQueued: maxQueued, boxes: map[AgentID]*mailbox{}}
}

// submit adds a message to the agent's mailbox; it starts at once when the
// agent is idle and a slot is free. When it would wait and the queue is
// full it returns false and keeps nothing, unless force is set (an event,
// never dropped: AWP-FLOW-032).
func (d *dispatcher) submit(agent AgentID, j *job, force bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	box := d.boxes[agent]
	idle := box == nil || (box.current == nil && len(box.jobs) == 0)
	if idle && d.running < d.maxRunning && len(d.resumers) == 0 {
		if box == nil {
			box = &mailbox{}
			d.boxes[agent] = box
		}
		d.start(agent, box, j)
		return true
	}
	if d.queued >= d.maxQueued && !force {
		return false
	}
	if box == nil {
		box = &mailbox{}
		d.boxes[agent] = box
	}
	box.jobs = append(box.jobs, j)
	d.queued++
	if box.current == nil && len(box.jobs) == 1 {
		d.ready = append(d.ready, agent)
	}
	return true
}

// full reports whether the inbound queue is at its bound.
func (d *dispatcher) full() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queued >= d.maxQueued
}

// pending counts handlers started and not ended plus messages waiting.
func (d *dispatcher) pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running + d.parked + d.queued
}

// waitRoom blocks until the queue is below its bound or stop is closed.
func (d *dispatcher) waitRoom(stop <-chan struct{}) {
	for {
		d.mu.Lock()
		if d.queued < d.maxQueued {
			d.mu.Unlock()
			return
		}
		if d.room == nil {
			d.room = make(chan struct{})
		}
		room := d.room
		d.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			return
		}
	}
}

// beginCall marks the start of a call by the handler r and returns the
// function to call when it ends, which gives the handler a slot again
// before it goes on. While a handler waits for its calls it holds no slot,
// so the agents it calls on this worker can run. (A bound on such handlers
// could deadlock call chains within one worker; the calls they wait for
// are bounded by the host's in-flight limit instead.)
func (d *dispatcher) beginCall(r *run) func() {
	if r == nil {
		return func() {}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.ended {
		return func() {}
	}
	r.calls++
	if r.calls == 1 && r.slot {
		r.slot = false
		d.running--
		d.parked++
		d.pump()
	}
	return func() { d.endCall(r) }
}

func (d *dispatcher) endCall(r *run) {
	d.mu.Lock()
	r.calls--
	if r.calls > 0 || r.slot || r.ended {
		d.mu.Unlock()
		return
	}
	if d.running < d.maxRunning && len(d.resumers) == 0 {
		d.take(r)
		d.mu.Unlock()
		return
	}
	r.wake = make(chan struct{})
	wake := r.wake
	d.resumers = append(d.resumers, r)
	d.mu.Unlock()
	<-wake
}

// cancelQueued empties every mailbox and cancels what waited there.
func (d *dispatcher) cancelQueued() {
	d.mu.Lock()
	var jobs []*job
	for agent, box := range d.boxes {
		jobs = append(jobs, box.jobs...)
		box.jobs = nil
		if box.current == nil {
			delete(d.boxes, agent)
		}
	}
	d.ready = nil
	d.queued = 0
	d.signalRoom()
	d.mu.Unlock()
	for _, j := range jobs {
		j.cancel()
	}
}

// take gives a waiting handler a slot; d.mu is held.
func (d *dispatcher) take(r *run) {
	r.slot = true
	d.parked--
	d.running++
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

// start runs j as the agent's handler; d.mu is held.
func (d *dispatcher) start(agent AgentID, box *mailbox, j *job) {
	r := &run{slot: true}
	box.current = r
	d.running++
	go func() {
		defer d.finish(agent, box, r)
		j.run(r)
	}()
}

func (d *dispatcher) finish(agent AgentID, box *mailbox, r *run) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r.ended = true
	box.current = nil
	if r.slot {
		d.running--
	} else {
		d.parked--
		if r.wake != nil { // a call of its still waits for a slot: let it go
			close(r.wake)
			r.wake = nil
		}
	}
	if len(box.jobs) > 0 {
		d.ready = append(d.ready, agent)
	} else if d.boxes[agent] == box {
		delete(d.boxes, agent)
	}
	d.pump()
}

// pump fills free slots: first handlers going on after their calls, then
// waiting messages in the order their agents became ready; d.mu is held.
func (d *dispatcher) pump() {
	for d.running < d.maxRunning {
		if len(d.resumers) > 0 {
			r := d.resumers[0]
			d.resumers = d.resumers[1:]
			if !r.ended {
				d.take(r)
			}
			continue
		}
		if len(d.ready) == 0 {
			break
		}
		agent := d.ready[0]
		d.ready = d.ready[1:]
		box := d.boxes[agent]
		if box == nil || len(box.jobs) == 0 {
			continue
		}
		j := box.jobs[0]
		box.jobs[0] = nil
		box.jobs = box.jobs[1:]
		d.queued--
		d.start(agent, box, j)
	}
	if d.queued < d.maxQueued {
		d.signalRoom()
	}
}

func (d *dispatcher) signalRoom() {
	if d.room != nil {
		close(d.room)
		d.room = nil
	}
}
