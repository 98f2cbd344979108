package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
)

// call is one logical request, sent to one endpoint after another until one answers.
type call struct {
	method string
	// path is already escaped (see keyPath).
	path  string
	query url.Values
	body  []byte
	// read marks requests that change nothing, so they may be re-sent to another endpoint after
	// any transport error. Writes are re-sent only when they surely never reached a server.
	read    bool
	session *Session
}

// reply is an HTTP answer, read in full.
type reply struct {
	status   int
	header   http.Header
	body     []byte
	endpoint string
}

// failure is one endpoint that did not serve a call, kept to explain a total failure.
type failure struct {
	endpoint string
	err      error
}

// do sends c to the endpoints, starting at the one that last answered (at the first one with
// Config.PreferFirst), and returns the first
// answer that settles the call: a 2xx reply, or a server error other than no_leader, unavailable
// or timeout, and for a read other than any 5xx (returned as *Error, with the reply so callers
// can read its metadata). It moves on to the next
// endpoint only when that is safe (see the package doc); when every endpoint fails it returns
// the most informative error, naming what was tried.
func (cl *Client) do(ctx context.Context, c call) (*reply, error) {
	requestID := newRequestID()
	start := 0
	if !cl.preferFirst {
		start = int(cl.preferred.Load())
	}
	n := len(cl.endpoints)
	var failures []failure
	for i := range n {
		idx := (start + i) % n
		endpoint := cl.endpoints[idx]
		if err := ctx.Err(); err != nil {
			return nil, giveUp(failures, fmt.Errorf("%s %s: %w", c.method, c.path, err))
		}
		rep, sent, err := cl.attempt(ctx, endpoint, c, requestID)
		if err != nil {
			switch {
			case sent && !c.read:
				// The write may have been delivered and applied: another endpoint must not see
				// it again, and the caller must not take it for failed.
				return nil, &Error{
					Code:      CodeOutcomeUnknown,
					Message:   "no answer after the request was sent, so the write may or may not have been applied: " + err.Error(),
					Endpoint:  endpoint,
					RequestID: requestID,
					Err:       err,
				}
			case ctx.Err() != nil:
				// The caller gave up: stop here, nothing was written.
				return nil, giveUp(failures, err)
			}
			failures = append(failures, failure{endpoint, err})
			continue
		}
		c.session.observe(rep.header.Get(HeaderSession))
		if rep.status >= 200 && rep.status < 300 {
			cl.preferred.Store(int32(idx))
			return rep, nil
		}
		serr := decodeError(endpoint, requestID, rep.status, rep.header, rep.body)
		if leftAlone(serr) || (c.read && serr.Status >= 500) {
			// The server guarantees it did nothing; another node may do better (a minority
			// node has no leader, the majority side does; a node cut off from the leader gets
			// no read index in time, the leader does). A read changes nothing, so any server
			// error (a node's failing disk, a proxy's 502) sends it on, as a lost answer does.
			failures = append(failures, failure{endpoint, serr})
			continue
		}
		// A definite answer, even an error: this endpoint works, start here next time.
		cl.preferred.Store(int32(idx))
		return rep, serr
	}
	return nil, giveUp(failures, nil)
}

// leftAlone reports whether a server's error answer says it did nothing, though another node
// may serve the call: 503 no_leader or unavailable, and 504 timeout (a read that did not
// complete, a write never proposed or forwarded; docs/http-api.md, Errors).
func leftAlone(e *Error) bool {
	switch e.Status {
	case http.StatusServiceUnavailable:
		return e.Code == CodeNoLeader || e.Code == CodeUnavailable
	case http.StatusGatewayTimeout:
		return e.Code == CodeTimeout
	}
	return false
}

// attempt sends c to one endpoint, bounded by the per-attempt timeout. sent reports whether the
// request may have reached the server: false means the connection was never made, so re-sending
// it elsewhere cannot apply it twice.
func (cl *Client) attempt(ctx context.Context, endpoint string, c call, requestID string) (rep *reply, sent bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, cl.timeout)
	defer cancel()
	var gotConn atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// From here on bytes may go to the server. The boundary is conservative: a failure
		// between getting the connection and writing counts as sent.
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})
	u := endpoint + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, body)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", c.method, displayEndpoint(endpoint), err)
	}
	req.Header.Set(HeaderRequestID, requestID)
	req.Header.Set("Accept", "application/json")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if tok := c.session.header(); tok != "" {
		req.Header.Set(HeaderSession, tok)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		sent = !isDialError(err) && (gotConn.Load() || !cl.traced)
		return nil, sent, fmt.Errorf("%s %s: %w", c.method, displayEndpoint(endpoint), transportCause(err))
	}
	defer resp.Body.Close()
	limit := io.Reader(resp.Body)
	if resp.StatusCode >= 300 {
		limit = io.LimitReader(resp.Body, maxErrorBody)
	}
	data, err := io.ReadAll(limit)
	if err != nil {
		// The status line came, but not the whole answer: treat it as no answer, since a
		// truncated value or metadata must not be taken for the real one.
		return nil, true, fmt.Errorf("%s %s: reading the answer: %w", c.method, displayEndpoint(endpoint), transportCause(err))
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: data, endpoint: endpoint}, true, nil
}

// isDialError reports whether err happened while connecting, before anything was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// transportCause strips the *url.Error wrapper, whose text repeats the whole URL; callers say
// which endpoint instead.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// giveUp builds the error of a call no endpoint served. A server's answer (503 no_leader, say)
// says more than a refused connection, so it is preferred; then the last transport error. final,
// when set, is why the call stopped early (the caller's context ended) and takes precedence.
// With more than one failure the endpoints tried are listed, so the user can see where the
// client looked.
func giveUp(failures []failure, final error) error {
	var best error
	var explains bool // best says what went wrong by itself (not a bare transport error)
	for _, f := range failures {
		var e *Error
		if errors.As(f.err, &e) {
			best, explains = f.err, true
			break
		}
	}
	noAnswer := !explains // no server answered (a 503 no_leader is an answer)
	if best == nil && len(failures) > 0 {
		best = failures[len(failures)-1].err
	}
	if final != nil {
		best, explains = final, true
	}
	switch {
	case best == nil:
		return &failoverError{msg: "client: no endpoint was tried", noAnswer: true}
	case len(failures) == 0, len(failures) == 1 && final == nil:
		// One failure explains itself.
		if noAnswer {
			return &failoverError{msg: best.Error(), best: best, noAnswer: true}
		}
		return best
	}
	tried := make([]string, len(failures))
	for i, f := range failures {
		tried[i] = displayEndpoint(f.endpoint) + " (" + shortReason(f.err) + ")"
	}
	msg := "tried " + strings.Join(tried, ", ")
	if explains {
		msg = best.Error() + "; " + msg
	} else {
		msg = "no endpoint answered: " + msg
	}
	return &failoverError{msg: msg, best: best, noAnswer: noAnswer}
}

// failoverError is a call that failed on every endpoint. It unwraps to the most informative of
// the failures, so IsUnavailable and errors.Is see through it, and is ErrNoAnswer when no
// server answered.
type failoverError struct {
	msg      string
	best     error
	noAnswer bool
}

func (e *failoverError) Error() string { return e.msg }
func (e *failoverError) Unwrap() error { return e.best }

func (e *failoverError) Is(target error) bool { return target == ErrNoAnswer && e.noAnswer }

// displayEndpoint is an endpoint as users write it: host:port for plain HTTP.
func displayEndpoint(endpoint string) string {
	return strings.TrimPrefix(endpoint, "http://")
}

// shortReason is a few words on why one endpoint failed, for the list of endpoints tried.
func shortReason(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e) && e.Code != "":
		return e.Code
	case errors.As(err, &e):
		return fmt.Sprintf("HTTP %d", e.Status)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "unknown host"
	}
	if cause := errors.Unwrap(err); cause != nil {
		return cause.Error() // without the "METHOD endpoint:" prefix the list already gives
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// newRequestID returns 16 random hex digits. The same id goes to every endpoint a call tries, so
// the servers' logs show one request's whole path.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b[:])
}
