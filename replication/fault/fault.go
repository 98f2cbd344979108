// Package fault is the test-only fault hook compiled into every kvd: the faults a node should
// inject into its own transports (Raft, gossip, node-to-node HTTP) and clock. It only describes
// and decides; the engines consult it at their edges. docs/faults.md is the user contract.
//
// An Injector made with New(false) refuses every Set, so a production node cannot be faulted
// through its API. A nil *Injector is valid and injects nothing. Checks are one atomic load when
// no fault is active. Standard library only.
package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrDisabled: the node was not started with --test-faults.
	ErrDisabled = errors.New("fault injection is disabled on this node: start kvd with --test-faults")
	// ErrPartitioned is what a dropped message looks like to the code that sent it.
	ErrPartitioned = errors.New("fault injection: link cut")
	// ErrInvalid: the faults asked for make no sense.
	ErrInvalid = errors.New("invalid faults")
)

// Duration is a time.Duration that reads and writes as Go duration text ("150ms").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"150ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Faults is the set of faults in force on one node (see docs/faults.md).
type Faults struct {
	DropIn               []string `json:"drop_in,omitempty"`
	DropOut              []string `json:"drop_out,omitempty"`
	Delay                Duration `json:"delay,omitempty"`
	Jitter               Duration `json:"jitter,omitempty"`
	Loss                 float64  `json:"loss,omitempty"`
	ClockOffset          Duration `json:"clock_offset,omitempty"`
	UnsafeStrongReads    bool     `json:"unsafe_strong_reads,omitempty"`
	UnsafeEventualCommit bool     `json:"unsafe_eventual_commit,omitempty"`
}

// Validate checks the values.
func (f Faults) Validate() error {
	var errs []error
	if f.Delay < 0 || f.Jitter < 0 {
		errs = append(errs, fmt.Errorf("%w: delay and jitter must not be negative", ErrInvalid))
	}
	if time.Duration(f.Delay+f.Jitter) > time.Minute {
		errs = append(errs, fmt.Errorf("%w: delay plus jitter over a minute", ErrInvalid))
	}
	if f.Loss < 0 || f.Loss > 1 {
		errs = append(errs, fmt.Errorf("%w: loss %v is not a probability", ErrInvalid, f.Loss))
	}
	if d := time.Duration(f.ClockOffset); d > time.Hour || d < -time.Hour {
		errs = append(errs, fmt.Errorf("%w: clock offset %v beyond an hour", ErrInvalid, d))
	}
	return errors.Join(errs...)
}

// active is the compiled form of Faults.
type active struct {
	f        Faults
	dropIn   map[string]bool
	dropOut  map[string]bool
	anyDelay bool
}

// Injector holds one node's faults.
type Injector struct {
	enabled bool
	on      atomic.Bool // any fault in force
	mu      sync.RWMutex
	cur     active
	offset  atomic.Int64 // clock offset, ns
}

// New returns an injector; a disabled one refuses Set.
func New(enabled bool) *Injector { return &Injector{enabled: enabled} }

// Enabled reports whether faults may be set.
func (i *Injector) Enabled() bool { return i != nil && i.enabled }

// Set replaces the faults in force.
func (i *Injector) Set(f Faults) error {
	if !i.Enabled() {
		return ErrDisabled
	}
	if err := f.Validate(); err != nil {
		return err
	}
	a := active{f: f, dropIn: set(f.DropIn), dropOut: set(f.DropOut), anyDelay: f.Delay > 0 || f.Jitter > 0}
	i.mu.Lock()
	i.cur = a
	i.mu.Unlock()
	i.offset.Store(int64(f.ClockOffset))
	i.on.Store(len(a.dropIn) > 0 || len(a.dropOut) > 0 || a.anyDelay || f.Loss > 0 || f.UnsafeStrongReads || f.UnsafeEventualCommit)
	return nil
}

// Heal clears every fault.
func (i *Injector) Heal() error { return i.Set(Faults{}) }

// Get returns the faults in force.
func (i *Injector) Get() Faults {
	if i == nil {
		return Faults{}
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.cur.f
}

func set(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func (i *Injector) snapshot() (active, bool) {
	if i == nil || !i.on.Load() {
		return active{}, false
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.cur, true
}

// DropIn reports whether a message from node from must be dropped on arrival.
func (i *Injector) DropIn(from string) bool {
	a, ok := i.snapshot()
	return ok && a.dropIn[from]
}

// DropOut reports whether a message to node to must not be sent: the link is cut, or the
// message is lost (Loss).
func (i *Injector) DropOut(to string) bool {
	a, ok := i.snapshot()
	if !ok {
		return false
	}
	return a.dropOut[to] || a.f.Loss > 0 && rand.Float64() < a.f.Loss
}

// Delay returns how long to hold an outgoing message (delay plus random jitter).
func (i *Injector) Delay() time.Duration {
	a, ok := i.snapshot()
	if !ok || !a.anyDelay {
		return 0
	}
	d := time.Duration(a.f.Delay)
	if a.f.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(a.f.Jitter) + 1))
	}
	return d
}

// Wait sleeps for Delay(). Callers on paths that must not block use Delay instead.
func (i *Injector) Wait() {
	if d := i.Delay(); d > 0 {
		time.Sleep(d)
	}
}

// Now is the node's physical clock: the real one shifted by the clock offset.
func (i *Injector) Now() time.Time {
	if i == nil {
		return time.Now()
	}
	return time.Now().Add(time.Duration(i.offset.Load()))
}

// UnsafeStrongReads reports whether strong reads must (deliberately, wrongly) skip the read index.
func (i *Injector) UnsafeStrongReads() bool {
	a, ok := i.snapshot()
	return ok && a.f.UnsafeStrongReads
}

// UnsafeEventualCommit reports whether this node's committer batches must (deliberately,
// wrongly) be applied without the version check.
func (i *Injector) UnsafeEventualCommit() bool {
	a, ok := i.snapshot()
	return ok && a.f.UnsafeEventualCommit
}
