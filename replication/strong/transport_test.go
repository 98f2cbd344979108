package strong

import (
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/replication/fault"
)

// heartbeatCapture is a transport that hands out the heartbeat handler it was given.
type heartbeatCapture struct {
	raft.Transport
	handler func(raft.RPC)
}

func (h *heartbeatCapture) SetHeartbeatHandler(cb func(raft.RPC)) { h.handler = cb }

// Close waits for a heartbeat handler that is running (raft may be saving a new term in it,
// into the log store the engine closes next), and heartbeats after it are refused unhandled.
func TestCloseWaitsForHeartbeatsAndRefusesLaterOnes(t *testing.T) {
	_, inner := raft.NewInmemTransport("")
	capture := &heartbeatCapture{Transport: inner}
	tr := newObservingTransport(capture, newAcks(), fault.New(false))
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	tr.SetHeartbeatHandler(func(rpc raft.RPC) {
		calls++
		close(entered)
		<-release
		rpc.Respond(nil, nil)
	})
	heartbeat := func() chan raft.RPCResponse {
		resp := make(chan raft.RPCResponse, 1)
		go capture.handler(raft.RPC{Command: &raft.AppendEntriesRequest{}, RespChan: resp})
		return resp
	}
	first := heartbeat()
	<-entered
	closed := make(chan struct{})
	go func() {
		tr.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a heartbeat handler was still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if r := <-first; r.Error != nil {
		t.Errorf("the running heartbeat was answered %v", r.Error)
	}
	if r := <-heartbeat(); r.Error == nil || calls != 1 {
		t.Errorf("a heartbeat after Close: error %v, handler calls %d; want refused, 1 call", r.Error, calls)
	}
}

// A pipeline raft closes (a follower's replication stops: leadership lost, the follower
// unreachable, an error) must take its relay goroutine with it: the transports never close the
// channel the relay ranged over, so every pipeline a leader ever opened left one goroutine
// behind, holding the last append (its entries) it could not hand to raft any more.
func TestClosedPipelinesLeaveNoGoroutine(t *testing.T) {
	addrA, a := raft.NewInmemTransport("")
	addrB, b := raft.NewInmemTransport("")
	a.Connect(addrB, b)
	b.Connect(addrA, a)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // b answers every append
		for {
			select {
			case rpc := <-b.Consumer():
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			case <-stop:
				return
			}
		}
	}()
	tr := newObservingTransport(a, newAcks(), fault.New(false))
	defer tr.Close()
	base := runtime.NumGoroutine()
	const pipelines = 50
	for i := range pipelines {
		p, err := tr.AppendEntriesPipeline("b", addrB)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.AppendEntries(&raft.AppendEntriesRequest{Term: 1}, &raft.AppendEntriesResponse{}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			<-p.Consumer() // raft read the answer; on odd rounds it stopped first and never does
		}
		p.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+5 {
		if time.Now().After(deadline) {
			buf := make([]byte, 8<<10)
			t.Fatalf("%d goroutines after opening and closing %d pipelines, %d before; the first of them:\n%s", runtime.NumGoroutine(), pipelines, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
