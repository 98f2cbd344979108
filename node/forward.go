package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/plant"
	"github.com/dialkv/dialkv/replication"
)

// forwardedVia names the leader that proposed a write this node forwarded, and the leader's
// applied index after it (zero when this node proposed it itself). relayed: the leader predates
// batched forwarding, the request was relayed to it whole, and its answer is already written.
type forwardedVia struct {
	leader  string
	applied uint64
	relayed bool
}

// strongWrite proposes the write when this node leads, and otherwise has the forwarder take it
// to the leader (forward_batch.go), retrying while no leader is known and nothing can have been
// applied, until ctx (the request's LeaderWait) ends.
func (n *Node) strongWrite(ctx context.Context, w http.ResponseWriter, r *http.Request, wr writeRequest) (replication.Result, forwardedVia, error) {
	for {
		if n.raft.IsLeader() {
			cmd := wr.cmd
			// A strong write's stamp is in this node's strong space, so the version it gets never
			// equals one this clock gives an eventual write (consistency.Clock.NowStrong).
			cmd.Stamp = n.clock.NowStrong()
			if err := n.checkStrongStamp(&cmd); err != nil {
				return replication.Result{}, forwardedVia{}, err
			}
			if err := n.strongStampedAfterSession(&cmd, wr.seen); err != nil {
				return replication.Result{}, forwardedVia{}, err
			}
			if plant.StrongAckEarly && cmd.Cond == replication.CondNone {
				return n.ackUncommitted(cmd), forwardedVia{}, nil
			}
			res, err := n.propose(ctx, &cmd)
			if !errors.Is(err, replication.ErrNotLeader) {
				return res, forwardedVia{}, err
			}
		}
		if r.Header.Get(client.HeaderForwarded) != "" {
			return replication.Result{}, forwardedVia{}, n.notLeaderFor(r)
		}
		if !n.raft.IsLeader() {
			// Stamped here too: the leader stamps the write anew, after this stamp (see
			// handlePropose), so what this node's clock saw orders it.
			wr.cmd.Stamp = n.clock.NowStrong()
			fr := n.forwardWrite(ctx, &wr.cmd, wr.seen)
			if fr.relay {
				done, err := n.forwardToLeader(ctx, w, r, wr.body)
				if done || err != nil {
					return replication.Result{}, forwardedVia{relayed: done}, err
				}
				fr.retry = true
			}
			if !fr.retry {
				var ce *replication.ConflictError
				if errors.As(fr.err, &ce) {
					ce.Key = wr.cmd.Key
				}
				return fr.res, forwardedVia{leader: fr.leader, applied: fr.applied}, fr.err
			}
		}
		if pause(ctx, 20*time.Millisecond) != nil {
			return replication.Result{}, forwardedVia{}, n.noLeaderError()
		}
	}
}

// forwardToLeader relays r (with body) to the leader once. done: the leader's answer was written
// to w. err: give up with it. Neither: nothing was applied and the caller may try again (no
// leader yet, the leader moved, or it could not be reached).
func (n *Node) forwardToLeader(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) (done bool, err error) {
	if r.Header.Get(client.HeaderForwarded) != "" {
		return false, n.notLeaderFor(r)
	}
	id, addr, err := n.waitLeader(ctx)
	if err != nil {
		return false, err
	}
	if id == n.cfg.ID {
		return false, nil // we were just elected: the caller proposes locally
	}
	req, err := n.forwardedRequest(ctx, r, addr, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	kind := "write"
	if r.URL.Path == "/v1/cluster/join" {
		kind = "join"
	}
	n.metrics.forwarded.WithLabelValues(kind).Inc()
	resp, err := n.peerClient.Do(req)
	if err != nil {
		if isDialError(err) {
			return false, nil // never reached the leader
		}
		return false, fmt.Errorf("%w: the request was sent to leader %s but no answer came back: %v", replication.ErrOutcomeUnknown, id, err)
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, fmt.Errorf("%w: reading leader %s's answer: %v", replication.ErrOutcomeUnknown, id, err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		var eb client.ErrorBody
		if json.Unmarshal(payload, &eb) == nil && eb.Code == client.CodeNoLeader {
			return false, nil // it stopped leading before proposing: try again
		}
	}
	n.relayAnswer(w, resp, payload)
	return true, nil
}

// forwardedRequest is r as this node sends it on to the node at addr: the same method, path,
// query and body, the headers that shape the answer, the request id, and the mark that it was
// forwarded (the node asked will not forward it again).
func (n *Node) forwardedRequest(ctx context.Context, r *http.Request, addr string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+r.URL.RequestURI(), body)
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Content-Type", "Accept", client.HeaderSession} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(client.HeaderRequestID, requestID(r))
	req.Header.Set(client.HeaderForwarded, n.cfg.ID)
	return req, nil
}

// relayAnswer writes another node's answer (resp, its body read into payload) as this node's,
// naming this node in Dialkv-Via, and in the JSON body's metadata too when it has one, so that
// headers and body agree.
func (n *Node) relayAnswer(w http.ResponseWriter, resp *http.Response, payload []byte) {
	if v, err := consistency.ParseVersion(resp.Header.Get(client.HeaderVersion)); err == nil {
		n.observeOutside(v, "relayed answer") // clocks observe responses (DESIGN.md)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		payload = withVia(payload, n.cfg.ID) // never a raw value, which may look like JSON
	}
	h := w.Header()
	for k, vs := range resp.Header {
		switch k {
		case "Connection", "Transfer-Encoding", "Date", "Content-Length":
			continue
		}
		h[k] = vs
	}
	h.Set(client.HeaderVia, n.cfg.ID)
	w.WriteHeader(resp.StatusCode)
	w.Write(payload)
}

// notLeaderFor answers a request another node forwarded here, taking this node for the leader,
// when it does not lead: the sender is told so and finds the leader again (a request is
// forwarded at most once).
func (n *Node) notLeaderFor(r *http.Request) error {
	id, _ := n.raft.Leader()
	return fmt.Errorf("forwarded by %s: %w", r.Header.Get(client.HeaderForwarded), &replication.NotLeaderError{LeaderID: id})
}

// checkStamp refuses a write this node stamped with a version no clock can have stamped
// (consistency.Version.Stamped: its wall clock reads before 1970 or past consistency.MaxWall):
// an eventual write (the tentative layer would drop it), or, as leader, a strong one, as
// checkCommitBatch refuses such a batch. Proposed, a strong write took that version into the log:
// past MaxWall it is one no clock observes, so it won over every later eventual write of its key,
// from every node, for good; at or below 1970 its text form is one no client can send back as
// if_version. who names the node in the error ("the leader n1" for a strong write).
func (n *Node) checkStamp(who string, v consistency.Version) error {
	if v.Stamped() {
		return nil
	}
	return fmt.Errorf("%w: %s stamped the write %s: its wall clock is outside the years a version can carry (1970 to 2200), and nothing was written; fix its clock", errClockOff, who, v)
}

// checkStrongStamp is checkStamp for a strong write this node stamps as leader.
func (n *Node) checkStrongStamp(cmd *replication.Command) error {
	return n.checkStamp("the leader "+n.cfg.ID, cmd.Stamp)
}

// propose proposes cmd on the local engine (leader only), timing it.
func (n *Node) propose(ctx context.Context, cmd *replication.Command) (replication.Result, error) {
	start := time.Now()
	res, err := n.raft.Propose(ctx, cmd)
	if !errors.Is(err, replication.ErrNotLeader) {
		n.metrics.apply.Observe(time.Since(start).Seconds())
	}
	return res, err
}

// isDialError reports whether err happened before any byte of the request left this node.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// withVia returns a JSON answer body with meta.via set to via; any other body as it is.
func withVia(body []byte, via string) []byte {
	if len(body) == 0 || body[0] != '{' {
		return body
	}
	var top, meta map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top["meta"] == nil || json.Unmarshal(top["meta"], &meta) != nil || meta == nil {
		return body
	}
	meta["via"], _ = json.Marshal(via)
	raw, err := json.Marshal(meta)
	if err != nil {
		return body
	}
	top["meta"] = raw
	out, err := json.Marshal(top)
	if err != nil {
		return body
	}
	return append(out, '\n')
}
