package jepsen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Event types of a history, as in Jepsen: an invocation, then exactly one completion.
const (
	// TypeInvoke: the client is about to send the request.
	TypeInvoke = "invoke"
	// TypeOK: the operation took effect (a read returned its value).
	TypeOK = "ok"
	// TypeFail: the operation certainly did not take effect.
	TypeFail = "fail"
	// TypeInfo: the outcome is unknown (a write may or may not have been applied). Never
	// treated as failed by a checker.
	TypeInfo = "info"
)

// Operation kinds (Event.F).
const (
	FRead   = "read"
	FWrite  = "write"
	FCAS    = "cas"
	FDelete = "delete"
)

// NemesisProcess is the process number of the nemesis' events in a history.
const NemesisProcess = -1

// Event is one line of a history (history.jsonl). Times are nanoseconds since the run started,
// on the harness' monotonic clock.
type Event struct {
	// ID pairs an invocation with its completion.
	ID   int    `json:"id"`
	Type string `json:"type"`
	// Process is the logical client; it changes after an indeterminate operation, because
	// that client's next operation may be concurrent with the unknown one.
	Process  int    `json:"process"`
	Workload string `json:"workload,omitempty"`
	// Session is the session a session-workload operation belongs to (it outlives processes).
	Session int `json:"session,omitempty"`
	// Node is the node the client sent the request to first, the one the workload chose; a
	// client that failed over from it says in ReceivedBy which node took the request.
	Node  string `json:"node,omitempty"`
	Level string `json:"level,omitempty"`
	F     string `json:"f"`
	Key   string `json:"key,omitempty"`
	// Value is the value written (invoke and completion of writes) or read (completion of reads).
	Value string `json:"value,omitempty"`
	// Absent is true for a read that found no value.
	Absent bool `json:"absent,omitempty"`
	// From is the value a compare-and-set expected ("" with Absent: create-if-absent).
	From string `json:"from,omitempty"`
	// Bound is a bounded read's max staleness.
	Bound string `json:"bound,omitempty"`
	Time  int64  `json:"time"`
	// Wall is the wall-clock time of the event (RFC 3339), for matching with node logs.
	Wall string `json:"wall,omitempty"`
	// Completion metadata, from the server's answer.
	Version string `json:"version,omitempty"`
	// ReceivedBy is the node that took the request (after any client failover), ServedBy the
	// one that served it (after any forwarding by the receiver).
	ReceivedBy string `json:"received_by,omitempty"`
	ServedBy   string `json:"served_by,omitempty"`
	// Served is the level the answer says was served (Dialkv-Consistency).
	Served    string `json:"served,omitempty"`
	State     string `json:"state,omitempty"`
	Staleness string `json:"staleness,omitempty"`
	Error     string `json:"error,omitempty"`
	Code      string `json:"code,omitempty"`
}

// Op is one operation with its invocation and completion: what the checkers read.
type Op struct {
	ID       int
	Process  int
	Workload string
	Session  int
	Node     string
	Level    string
	F        string
	Key      string
	// Value: written (writes) or read (ok reads).
	Value  string
	Absent bool
	From   string
	// FromAbsent marks a create-if-absent compare-and-set.
	FromAbsent bool
	Bound      time.Duration
	// Type is the completion: ok, fail or info.
	Type       string
	Invoke     int64
	Complete   int64
	Version    string
	ReceivedBy string
	ServedBy   string
	Served     string
	State      string
	Staleness  string
	Error      string
	Code       string
}

// Latency is how long the operation took.
func (o *Op) Latency() time.Duration { return time.Duration(o.Complete - o.Invoke) }

// IsWrite reports whether the operation changes state when it takes effect.
func (o *Op) IsWrite() bool { return o.F == FWrite || o.F == FCAS }

func (o *Op) invokeEvent() Event {
	e := Event{ID: o.ID, Type: TypeInvoke, Process: o.Process, Workload: o.Workload, Session: o.Session,
		Node: o.Node, Level: o.Level, F: o.F, Key: o.Key, Time: o.Invoke, From: o.From}
	if o.IsWrite() {
		e.Value = o.Value
	}
	if o.FromAbsent {
		e.Absent = true
	}
	if o.Bound > 0 {
		e.Bound = o.Bound.String()
	}
	return e
}

func (o *Op) completeEvent() Event {
	e := o.invokeEvent()
	e.Type, e.Time = o.Type, o.Complete
	e.Value, e.Absent = o.Value, o.Absent
	if o.F == FRead && o.Type != TypeOK {
		e.Value, e.Absent = "", false
	}
	e.Version, e.ReceivedBy, e.ServedBy, e.State, e.Staleness, e.Error, e.Code = o.Version, o.ReceivedBy, o.ServedBy, o.State, o.Staleness, o.Error, o.Code
	e.Served = o.Served
	return e
}

// Recorder collects a run's operations and streams them, as events, to a JSON-lines file.
// It is safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	w     *bufio.Writer
	file  io.Closer
	err   error
	next  int
	ops   []*Op
	nem   []Event
	// pending counts invoked operations not yet completed.
	pending int
}

// NewRecorder returns a recorder whose times count from start, writing to w (nil: memory only).
func NewRecorder(start time.Time, w io.WriteCloser) *Recorder {
	r := &Recorder{start: start}
	if w != nil {
		r.w, r.file = bufio.NewWriterSize(w, 64<<10), w
	}
	return r
}

// Now is the time since the run started, in nanoseconds.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Start is when the run started.
func (r *Recorder) Start() time.Time { return r.start }

func (r *Recorder) writeLocked(e Event) {
	if r.w == nil || r.err != nil {
		return
	}
	e.Wall = r.start.Add(time.Duration(e.Time)).UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(e)
	if err != nil {
		r.err = err
		return
	}
	b = append(b, '\n')
	_, r.err = r.w.Write(b)
}

// Invoke stamps op with an id and the invocation time and records the invocation.
func (r *Recorder) Invoke(op *Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	op.ID = r.next
	op.Invoke = r.Now()
	r.pending++
	r.writeLocked(op.invokeEvent())
}

// Complete stamps op's completion time and records it; op.Type must be set.
func (r *Recorder) Complete(op *Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Complete = r.Now()
	r.pending--
	r.ops = append(r.ops, op)
	r.writeLocked(op.completeEvent())
}

// Nemesis records a nemesis event (f: what, value: details) now and returns its time.
func (r *Recorder) Nemesis(f, value string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	e := Event{ID: r.next, Type: TypeInfo, Process: NemesisProcess, F: f, Value: value, Time: r.Now()}
	r.nem = append(r.nem, e)
	r.writeLocked(e)
	return e.Time
}

// Ops returns the completed operations so far, in completion order.
func (r *Recorder) Ops() []*Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Op(nil), r.ops...)
}

// NemesisEvents returns the nemesis events so far.
func (r *Recorder) NemesisEvents() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.nem...)
}

// Pending is the number of operations invoked and not yet completed.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// Flush writes buffered events to the file.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		return r.err
	}
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// Close flushes and closes the file.
func (r *Recorder) Close() error {
	err := r.Flush()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		if cerr := r.file.Close(); err == nil {
			err = cerr
		}
		r.file, r.w = nil, nil
	}
	return err
}

// ReadHistory reads a history.jsonl file.
func ReadHistory(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		events = append(events, e)
	}
	return events, sc.Err()
}

// PairEvents turns a history's events back into operations (nemesis events are skipped). An
// invocation without a completion (the harness died) becomes an indeterminate operation that
// never returned.
func PairEvents(events []Event) []*Op {
	open := map[int]*Op{}
	var ops []*Op
	for _, e := range events {
		if e.Process == NemesisProcess {
			continue
		}
		if e.Type == TypeInvoke {
			op := &Op{ID: e.ID, Process: e.Process, Workload: e.Workload, Session: e.Session, Node: e.Node,
				Level: e.Level, F: e.F, Key: e.Key, From: e.From, Invoke: e.Time}
			if op.IsWrite() {
				op.Value = e.Value
			}
			op.FromAbsent = e.F == FCAS && e.Absent
			if e.Bound != "" {
				op.Bound, _ = time.ParseDuration(e.Bound)
			}
			open[e.ID] = op
			continue
		}
		op, ok := open[e.ID]
		if !ok {
			continue
		}
		delete(open, e.ID)
		op.Type, op.Complete = e.Type, e.Time
		if op.F == FRead {
			op.Value, op.Absent = e.Value, e.Absent
		}
		op.Version, op.ReceivedBy, op.ServedBy, op.State, op.Staleness, op.Error, op.Code = e.Version, e.ReceivedBy, e.ServedBy, e.State, e.Staleness, e.Error, e.Code
		op.Served = e.Served
		ops = append(ops, op)
	}
	for _, op := range open {
		op.Type, op.Complete = TypeInfo, maxTime
		ops = append(ops, op)
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Complete < ops[j].Complete })
	return ops
}

// maxTime is "never returned": porcupine then lets the operation take effect at any point
// after its invocation.
const maxTime = int64(1<<63 - 1)
