package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitGoroutines polls until at most limit goroutines run, and fails with a dump of the first of
// them when that takes longer than timeout.
func waitGoroutines(t *testing.T, what string, limit int, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); runtime.NumGoroutine() > limit; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 16<<10)
			t.Fatalf("%s: %d goroutines after %v, want at most %d; the first of them:\n%s", what, runtime.NumGoroutine(), timeout, limit, buf[:runtime.Stack(buf, true)])
		}
	}
}

// waitNoGoroutineIn waits until no goroutine has frame (a function's name as stack traces
// print it) on its stack.
func waitNoGoroutineIn(t *testing.T, frame string, timeout time.Duration) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, frame) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still in %s after %v:\n%s", frame, timeout, stacks[:min(len(stacks), 16<<10)])
		}
	}
}

// settledGoroutines is the goroutine count once the cluster is idle: the test client's idle
// connections closed, and no count lower for a moment.
func settledGoroutines() int {
	testHTTP.CloseIdleConnections()
	low := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		low = min(low, runtime.NumGoroutine())
	}
	return low
}

// rawConn dials n's HTTP port; rcvbuf > 0 sets the socket's receive buffer before it connects
// (the kernel then grows it no further), so that a large answer it does not read fills it.
func rawConn(t *testing.T, n *Node, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
			if err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closes c (EOF or reset) within timeout, reading and
// discarding whatever else it sends.
func closedByServer(c net.Conn, timeout time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// A client that keeps a connection open after its answer and never sends another request (a
// pool without an idle timeout, a process that leaked it) used to keep it, and the goroutine
// serving it, for as long as it liked: the server set ReadHeaderTimeout only, which does not
// apply between requests.
func TestServerClosesIdleConnections(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, c *Config) { c.idleTimeout = 300 * time.Millisecond })
	n := tc.nodes[0]
	base := settledGoroutines()
	const conns = 20
	for range conns {
		c := rawConn(t, n, 0)
		fmt.Fprintf(c, "GET /v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitGoroutines(t, fmt.Sprintf("%d idle keep-alive connections", conns), base+3, 5*time.Second)
}

// A request whose body stops arriving (a client paused or gone mid-upload, or one that sends
// headers announcing a body and then nothing) used to hold its handler, blocked reading the
// body, for good: nothing bounded the body read. So did one refused before its body was read
// (here for its consistency level): the server drains a small unread body before it answers.
func TestServerCutsOffStalledBodies(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, c *Config) { c.ioStall = 300 * time.Millisecond })
	n := tc.nodes[0]
	base := settledGoroutines()
	const conns = 20
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i] = rawConn(t, n, 0)
		level := "eventual"
		if i%2 == 1 {
			level = "bogus"
		}
		fmt.Fprintf(cs[i], "PUT /v1/kv/stalled%d?consistency=%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n%s", i, level, strings.Repeat("x", 10))
	}
	for i, c := range cs {
		if !closedByServer(c, 5*time.Second) {
			t.Fatalf("connection %d: the server still waits for the rest of a body stalled for 5s", i)
		}
	}
	waitGoroutines(t, fmt.Sprintf("%d stalled bodies", conns), base+3, 5*time.Second)
	if r := do(t, "GET", n, "/v1/kv/stalled0?consistency=eventual", ""); r.status != http.StatusNotFound {
		t.Errorf("a value cut off mid-body was stored: %d %q", r.status, r.body)
	}
}

// A client that asks for a large value and never reads the answer used to hold the handler,
// blocked writing it, and the value in memory, for good: nothing bounded the write.
func TestServerCutsOffUnreadAnswers(t *testing.T) {
	const size = 12 << 20 // more than the kernel buffers of both ends take
	tc := startCluster(t, 1, func(_ int, c *Config) {
		c.ioStall = 300 * time.Millisecond
		c.MaxValueSize = size
	})
	n := tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/big?consistency=eventual", strings.Repeat("v", size)); r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	base := settledGoroutines()
	const conns = 5
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i] = rawConn(t, n, 4096)
		fmt.Fprintf(cs[i], "GET /v1/kv/big?consistency=eventual HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	// Not reading: the handlers fill the sockets and block, until the server gives up.
	waitGoroutines(t, fmt.Sprintf("%d clients that never read a %d-byte answer", conns, size), base+3, 10*time.Second)
	// Every one of them, not all but a few that the margin above leaves: a handler still
	// writing when this test starts reading its connection would go on, at the pace of a 4 KiB
	// window, and keep the connection.
	waitNoGoroutineIn(t, "node.(*Node).handleGet", 10*time.Second)
	for i, c := range cs {
		if !closedByServer(c, 5*time.Second) {
			t.Errorf("connection %d: still open", i)
		}
	}
}

// The stall bound is not a bound on a transfer: a body that keeps arriving, and an answer that
// keeps being read, take as long as they need, however much longer than the bound that is.
func TestServerTakesSlowButSteadyTransfers(t *testing.T) {
	const stall = 300 * time.Millisecond
	const size = 4 << 20
	tc := startCluster(t, 1, func(_ int, c *Config) {
		c.ioStall = stall
		c.MaxValueSize = size
	})
	n := tc.nodes[0]

	// Upload: a piece every stall/3, for over 4 stalls.
	const pieces = 15
	c := rawConn(t, n, 0)
	fmt.Fprintf(c, "PUT /v1/kv/slow?consistency=eventual HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", pieces)
	for range pieces {
		time.Sleep(stall / 3)
		if _, err := c.Write([]byte("u")); err != nil {
			t.Fatalf("the server cut off a body that kept arriving: %v", err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("slow upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("slow upload: %d", resp.StatusCode)
	}

	// Download: a value that takes several stalls to read, 32 KiB every stall/3.
	if r := do(t, "PUT", n, "/v1/kv/big?consistency=eventual", strings.Repeat("v", size/4)); r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	c = rawConn(t, n, 4096)
	fmt.Fprintf(c, "GET /v1/kv/big?consistency=eventual HTTP/1.1\r\nHost: x\r\n\r\n")
	start := time.Now()
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, buf := 0, make([]byte, 32<<10)
	for {
		time.Sleep(stall / 3)
		m, err := io.ReadFull(resp.Body, buf)
		got += m
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	if got != size/4 {
		t.Fatalf("read %d bytes of a %d-byte value in %v: the server cut off an answer that was being read", got, size/4, time.Since(start))
	}
	if took := time.Since(start); took < 3*stall {
		t.Fatalf("the download took %v: too fast to show anything about a %v stall bound", took, stall)
	}
}
