package strong

import (
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
