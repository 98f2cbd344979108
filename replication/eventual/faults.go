package eventual

import (
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dialkv/dialkv/replication/fault"
)

// faultTransport puts the engine's network transport behind the test-only fault hook: packets
// and streams to a cut peer are not sent (streams fail to dial), packets from one are discarded on
// arrival (in the transport's read loop, before memberlist sees them), and outgoing traffic is
// delayed without blocking memberlist's loops. Incoming streams cannot be told apart by sender
// (their source port is ephemeral); they are cut at the sender, which a partition always sets too.
type faultTransport struct {
	*transport
	faults *fault.Injector
	idOf   func(addr string) string
}

// newFaultTransport binds the engine's transport (see newNetTransport) behind faults; idOf maps
// a gossip address to the member id the faults name.
func newFaultTransport(mc *memberlist.Config, faults *fault.Injector, idOf func(string) string) (*faultTransport, error) {
	nt, err := newNetTransport(mc, func(from net.Addr) bool { return faults.DropIn(idOf(from.String())) })
	if err != nil {
		return nil, err
	}
	return &faultTransport{transport: nt, faults: faults, idOf: idOf}, nil
}

func (t *faultTransport) send(id string, write func() error) (time.Time, error) {
	if t.faults.DropOut(id) {
		return time.Now(), nil // lost on the way: the sender never knows
	}
	if d := t.faults.Delay(); d > 0 {
		time.AfterFunc(d, func() { write() })
		return time.Now(), nil
	}
	return time.Now(), write()
}

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	b = append([]byte(nil), b...)
	return t.send(t.idOf(addr), func() error { _, err := t.transport.WriteTo(b, addr); return err })
}

func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	id := a.Name
	if id == "" {
		id = t.idOf(a.Addr)
	}
	b = append([]byte(nil), b...)
	return t.send(id, func() error { _, err := t.transport.WriteToAddress(b, a); return err })
}

func (t *faultTransport) dial(id string) error {
	if t.faults.DropOut(id) {
		return &net.OpError{Op: "dial", Net: "tcp", Err: fault.ErrPartitioned}
	}
	t.faults.Wait()
	return nil
}

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if err := t.dial(t.idOf(addr)); err != nil {
		return nil, err
	}
	return t.transport.DialTimeout(addr, timeout)
}

func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	id := a.Name
	if id == "" {
		id = t.idOf(a.Addr)
	}
	if err := t.dial(id); err != nil {
		return nil, err
	}
	return t.transport.DialAddressTimeout(a, timeout)
}

// faultyClient returns c with its transport behind the fault hook (requests to cut peers fail as
// if never sent, every request names its sender).
func (e *Engine) faultyClient(c *http.Client) *http.Client {
	wrapped := *c
	wrapped.Transport = &fault.RoundTripper{Base: c.Transport, Self: e.cfg.NodeID, Faults: e.cfg.Faults, IDOf: e.members.idByHTTPAddr}
	return &wrapped
}
