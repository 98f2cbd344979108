package node

import (
	"cmp"
	"io"
	"net"
	"net/http"
	"time"
)

// idleTimeout closes a keep-alive connection with no request for this long. The server used to
// set ReadHeaderTimeout only, which does not apply between requests: a client that kept a
// connection open after its answer (a pool without an idle timeout, a process that leaked it)
// held it and the goroutine serving it for as long as it liked. It is longer than the 90s after
// which the nodes' own peer clients, the gossip client and package client close theirs: the
// client side always closes first, so the server never closes a connection as a client sends a
// request on it (a POST the Go client cannot safely send again, which a forwarding node would
// have to report as outcome_unknown).
const idleTimeout = 2 * time.Minute

// ReadHeaderTimeout does not bound a request's body or its answer either: a client that stopped
// sending a body it had announced, or never read a large answer, held the connection and its
// handler (and, for an answer, the value or page in memory) for good.
const (
	// ioStall bounds how long reading a request's body may wait for the next bytes, and how
	// long writing the answer may wait to pass on the next ioChunk. It bounds stalls, not
	// transfers: a large value on a slow link takes as long as it needs as long as it moves.
	ioStall = 30 * time.Second
	// ioChunk is how much of an answer one write deadline covers.
	ioChunk = 64 << 10
)

// deadliner is the part of the server's http.ResponseWriter (http.ResponseController's) that
// sets the connection's deadlines.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// boundIO cuts off a request whose body or answer stalls for longer than the stall bound: the
// body's reads fail (the handler answers 400), and so do the answer's writes, which closes the
// connection. Between reads and writes no deadline is set: a handler waiting for a leader or a
// quorum is bounded by its own context, not by this.
func (n *Node) boundIO(h http.Handler) http.Handler {
	stall := cmp.Or(n.cfg.ioStall, ioStall)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, ok := w.(deadliner)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		var body *stallReader
		if r.Body != nil && r.Body != http.NoBody {
			// On a copy: the server looks at the original's body once the handler answers
			// (how much is left unread) to decide whether to drain it or close the connection.
			body = &stallReader{ReadCloser: r.Body, conn: conn, stall: stall}
			r = r.WithContext(r.Context())
			r.Body = body
		}
		h.ServeHTTP(&stallWriter{ResponseWriter: w, conn: conn, stall: stall}, r)
		if body != nil && !body.eof {
			// The server drains a small unread rest of the body before it answers: that read
			// must end too. (Read to its end, the body has no deadline left, for the server's
			// own read that follows it.)
			conn.SetReadDeadline(time.Now().Add(stall))
		}
		// The server flushes what the handler left buffered after it returns; the deadline is
		// cleared once the connection is idle again (clearWriteDeadline).
		conn.SetWriteDeadline(time.Now().Add(stall))
	})
}

// clearWriteDeadline is the server's ConnState hook: a connection whose answer is written has
// no write deadline until the next answer sets one (boundIO), so that the server's own writes
// before a handler runs (a 100 Continue, an error for a malformed request) are not cut off by
// the deadline of an earlier answer.
func clearWriteDeadline(c net.Conn, state http.ConnState) {
	if state == http.StateIdle {
		c.SetWriteDeadline(time.Time{})
	}
}

// stallReader is a request body whose every read must make progress within stall.
type stallReader struct {
	io.ReadCloser
	conn  deadliner
	stall time.Duration
	eof   bool // read to its end
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.conn.SetReadDeadline(time.Now().Add(s.stall))
	n, err := s.ReadCloser.Read(p)
	if err == io.EOF {
		s.eof = true
		// At the body's end the server starts its own read of the connection, which must not
		// time out while the handler works (it would cancel the request's context). After
		// another error the deadline stays: the server's attempt to drain the rest of the body
		// fails at once, and it closes the connection.
		s.conn.SetReadDeadline(time.Time{})
	}
	return n, err
}

// stallWriter is an answer whose writes must pass on each ioChunk within stall.
type stallWriter struct {
	http.ResponseWriter
	conn  deadliner
	stall time.Duration
}

func (s *stallWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), ioChunk)]
		s.conn.SetWriteDeadline(time.Now().Add(s.stall))
		n, err := s.ResponseWriter.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
