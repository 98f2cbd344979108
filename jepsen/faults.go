package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/dialkv/dialkv/client"
)

// Errors of the fault hook client.
var (
	// ErrFaultsDisabled: the node answered 403, it was started without --test-faults.
	ErrFaultsDisabled = errors.New("fault hook disabled: kvd was started without --test-faults")
	// ErrNoFaultHook: the node does not serve /v1/test/faults at all (an older kvd).
	ErrNoFaultHook = errors.New("kvd has no fault hook (/v1/test/faults)")
)

// Faults is the body of kvd's fault hook (docs/faults.md): the faults in force on one node.
// The zero value is a healthy node.
type Faults struct {
	// DropIn: traffic from these node ids is dropped on arrival.
	DropIn []string
	// DropOut: traffic to these node ids is not sent.
	DropOut []string
	// Delay (plus uniform random Jitter) is added before each outgoing message.
	Delay, Jitter time.Duration
	// Loss is the probability that an outgoing message is dropped.
	Loss float64
	// ClockOffset shifts the node's physical clock, positive = ahead.
	ClockOffset time.Duration
	// UnsafeStrongReads makes strong reads skip the read index (deliberately not linearizable).
	UnsafeStrongReads bool
	// UnsafeEventualCommit applies committer batches without the version check.
	UnsafeEventualCommit bool
}

// wire is f as the hook's JSON body (client.Faults: durations as Go duration text).
func (f Faults) wire() client.Faults {
	return client.Faults{
		DropIn: f.DropIn, DropOut: f.DropOut,
		Delay: durationText(f.Delay), Jitter: durationText(f.Jitter), Loss: f.Loss,
		ClockOffset:       durationText(f.ClockOffset),
		UnsafeStrongReads: f.UnsafeStrongReads, UnsafeEventualCommit: f.UnsafeEventualCommit,
	}
}

// faultsFromWire parses the hook's body.
func faultsFromWire(w client.Faults) (Faults, error) {
	out := Faults{DropIn: w.DropIn, DropOut: w.DropOut, Loss: w.Loss,
		UnsafeStrongReads: w.UnsafeStrongReads, UnsafeEventualCommit: w.UnsafeEventualCommit}
	var err error
	if out.Delay, err = parseDurationText("delay", w.Delay); err != nil {
		return Faults{}, err
	}
	if out.Jitter, err = parseDurationText("jitter", w.Jitter); err != nil {
		return Faults{}, err
	}
	if out.ClockOffset, err = parseDurationText("clock_offset", w.ClockOffset); err != nil {
		return Faults{}, err
	}
	return out, nil
}

func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseDurationText(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("fault hook: %s %q: %w", field, s, err)
	}
	return d, nil
}

// MarshalJSON writes the hook's wire form.
func (f Faults) MarshalJSON() ([]byte, error) { return json.Marshal(f.wire()) }

// UnmarshalJSON reads the hook's wire form.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var w client.Faults
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	out, err := faultsFromWire(w)
	if err != nil {
		return err
	}
	*f = out
	return nil
}

// IsZero reports whether f injects nothing.
func (f Faults) IsZero() bool {
	return len(f.DropIn) == 0 && len(f.DropOut) == 0 && f.Delay == 0 && f.Jitter == 0 && f.Loss == 0 &&
		f.ClockOffset == 0 && !f.UnsafeStrongReads && !f.UnsafeEventualCommit
}

// Equal reports whether f and g are the same faults (id lists compared as sets).
func (f Faults) Equal(g Faults) bool {
	same := func(a, b []string) bool {
		a, b = slices.Clone(a), slices.Clone(b)
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(slices.Compact(a), slices.Compact(b))
	}
	return same(f.DropIn, g.DropIn) && same(f.DropOut, g.DropOut) && f.Delay == g.Delay && f.Jitter == g.Jitter &&
		f.Loss == g.Loss && f.ClockOffset == g.ClockOffset && f.UnsafeStrongReads == g.UnsafeStrongReads &&
		f.UnsafeEventualCommit == g.UnsafeEventualCommit
}

// FaultClient talks to kvd's fault hook, one node at a time (no failover: a fault belongs to
// the node it is set on), through the client package's fault calls.
type FaultClient struct {
	cl *client.Client
	// timeout bounds one call.
	timeout time.Duration
}

// NewFaultClient returns a client whose calls each take at most timeout.
func NewFaultClient(timeout time.Duration) *FaultClient {
	cfg := client.DefaultConfig()
	cfg.Timeout = timeout
	cl, err := client.New(cfg)
	if err != nil {
		panic(fmt.Sprintf("jepsen: fault client: %v", err)) // the default configuration is valid
	}
	return &FaultClient{cl: cl, timeout: timeout}
}

// Get returns the faults in force on the node at endpoint ("host:port").
func (c *FaultClient) Get(ctx context.Context, endpoint string) (Faults, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	w, err := c.cl.Faults(ctx, endpoint)
	return c.answer(endpoint, "GET", w, err)
}

// Set replaces the node's faults with f and returns what the node reports in force.
func (c *FaultClient) Set(ctx context.Context, endpoint string, f Faults) (Faults, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	w, err := c.cl.SetFaults(ctx, endpoint, f.wire())
	return c.answer(endpoint, "PUT", w, err)
}

// Heal clears every fault on the node.
func (c *FaultClient) Heal(ctx context.Context, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.answer(endpoint, "DELETE", client.Faults{}, c.cl.HealFaults(ctx, endpoint))
	return err
}

// answer maps the hook's refusals to this package's errors and parses what it reported.
func (c *FaultClient) answer(endpoint, method string, w client.Faults, err error) (Faults, error) {
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.Status == http.StatusForbidden:
		return Faults{}, fmt.Errorf("%s: %w", endpoint, ErrFaultsDisabled)
	case errors.As(err, &ce) && (ce.Status == http.StatusNotFound || ce.Status == http.StatusMethodNotAllowed):
		return Faults{}, fmt.Errorf("%s: %w (HTTP %d)", endpoint, ErrNoFaultHook, ce.Status)
	case err != nil:
		return Faults{}, fmt.Errorf("fault hook %s %s: %w", method, endpoint, err)
	}
	return faultsFromWire(w)
}
