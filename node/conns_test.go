package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
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
