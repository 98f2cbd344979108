package eventual

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dialkv/dialkv/replication/fault"
)

// faultTransport puts memberlist's network transport behind the test-only fault hook: packets
// and streams to a cut peer are not sent (streams fail to dial), packets from one are discarded on
// arrival, and outgoing traffic is delayed without blocking memberlist's loops. Incoming streams
// cannot be told apart by sender (their source port is ephemeral); they are cut at the sender,
// which a partition always sets too.
type faultTransport struct {
	*memberlist.NetTransport
	faults  *fault.Injector
	idOf    func(addr string) string
	packets chan *memberlist.Packet
	stop    chan struct{}
}

// newNetTransport binds memberlist's transport itself (as memberlist.Create would), so it can
// be wrapped; a port-0 bind retries, since TCP and UDP must get the same port.
func newNetTransport(mc *memberlist.Config) (*memberlist.NetTransport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger}
	if nc.Logger == nil {
		nc.Logger = log.New(nopWriter{}, "", 0)
	}
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			if mc.BindPort == 0 {
				mc.BindPort = nt.GetAutoBindPort()
				mc.AdvertisePort = mc.BindPort
			}
			return nt, nil
		}
		if mc.BindPort != 0 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("could not set up network transport: %w", err)
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func newFaultTransport(nt *memberlist.NetTransport, faults *fault.Injector, idOf func(string) string) *faultTransport {
	t := &faultTransport{NetTransport: nt, faults: faults, idOf: idOf, packets: make(chan *memberlist.Packet), stop: make(chan struct{})}
	go t.filter()
	return t
}

func (t *faultTransport) filter() {
	in := t.NetTransport.PacketCh()
	for {
		select {
		case <-t.stop:
			return
		case p := <-in:
			if p != nil && p.From != nil && t.faults.DropIn(t.idOf(p.From.String())) {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.stop:
				return
			}
		}
	}
}

func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

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
	return t.send(t.idOf(addr), func() error { _, err := t.NetTransport.WriteTo(b, addr); return err })
}

func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	id := a.Name
	if id == "" {
		id = t.idOf(a.Addr)
	}
	b = append([]byte(nil), b...)
	return t.send(id, func() error { _, err := t.NetTransport.WriteToAddress(b, a); return err })
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
	return t.NetTransport.DialTimeout(addr, timeout)
}

func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	id := a.Name
	if id == "" {
		id = t.idOf(a.Addr)
	}
	if err := t.dial(id); err != nil {
		return nil, err
	}
	return t.NetTransport.DialAddressTimeout(a, timeout)
}

func (t *faultTransport) Shutdown() error {
	close(t.stop)
	return t.NetTransport.Shutdown()
}

// faultyClient returns c with its transport behind the fault hook (requests to cut peers fail as
// if never sent, every request names its sender).
func (e *Engine) faultyClient(c *http.Client) *http.Client {
	wrapped := *c
	wrapped.Transport = &fault.RoundTripper{Base: c.Transport, Self: e.cfg.NodeID, Faults: e.cfg.Faults, IDOf: e.members.idByHTTPAddr}
	return &wrapped
}
