package eventual

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// Internal HTTP endpoints, all under PathPrefix (where the node mounts Handler). Bodies are the
// binary forms of wire.go, Content-Type application/octet-stream; errors are plain text.
const (
	PathPrefix = "/v1/internal/gossip/"
	// PathWrites: GET ?key=K&key=K2… answers this node's tentative entries of those keys (a
	// writes body; keys without one are left out): the direct fetch of announced large values.
	// POST a writes body: anti-entropy's push; the node merges it (and gossips what was new).
	PathWrites = PathPrefix + "writes"
	// PathDigest: POST a digest page; the answer is a digest reply.
	PathDigest = PathPrefix + "digest"
)

// Headers of internal requests.
const (
	headerLabel = "Dialkv-Gossip-Label" // must equal the receiver's Label
	headerFrom  = "Dialkv-Gossip-From"  // the sender's node id, for logs
)

const (
	// maxBody bounds every internal request and response body.
	maxBody = 64 << 20
	// transferBudget is what one digest reply or one push aims to stay under; a single write
	// larger than it still travels alone.
	transferBudget = 4 << 20
	// maxFetchKeys bounds the keys of one GET PathWrites.
	maxFetchKeys = 1024
	// maxPushesServed bounds the anti-entropy pushes (POST PathWrites) a node serves at once.
	// Each holds its body (up to the transfer budget, or one larger write) while it waits for
	// the tentative layer's commit: with a stalled disk, a peer that timed out pushed again in
	// its next round, and the bodies piled up for as long as the stall lasted. A push past the
	// bound is refused before its body is read; the peer pushes again in a later round.
	maxPushesServed = 4
	// getBatch is how many keys go to the store's GetTentative at once, at most, and
	// firstGetBatch how many at first (readTentative).
	getBatch      = 256
	firstGetBatch = 4
)

func (e *Engine) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathWrites, e.serveFetch)
	mux.HandleFunc("POST "+PathWrites, e.servePush)
	mux.HandleFunc("POST "+PathDigest, e.serveDigest)
	return e.guard(mux)
}

// guard refuses requests once the engine is shut down (the store may be closing) and requests
// from another cluster (a different label).
func (e *Engine) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.closed.Load() {
			http.Error(w, ErrShutdown.Error(), http.StatusServiceUnavailable)
			return
		}
		if got := r.Header.Get(headerLabel); got != e.cfg.Label {
			http.Error(w, fmt.Sprintf("gossip label %q is not this cluster's", got), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (e *Engine) serveFetch(w http.ResponseWriter, r *http.Request) {
	keys := r.URL.Query()["key"]
	if len(keys) == 0 || len(keys) > maxFetchKeys {
		http.Error(w, fmt.Sprintf("want 1 to %d key parameters, got %d", maxFetchKeys, len(keys)), http.StatusBadRequest)
		return
	}
	ws, err := e.store.GetTentative(keys)
	if err != nil {
		e.logger.Warn("serving a fetch: reading the tentative layer failed", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBinary(w, encodeWritesBody(e.cfg.NodeID, ws))
}

func (e *Engine) servePush(w http.ResponseWriter, r *http.Request) {
	select {
	case e.pushSlots <- struct{}{}:
		defer func() { <-e.pushSlots }()
	default:
		// Closing the connection spares reading the unread body before the answer.
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("busy: %d anti-entropy pushes are being stored; push again later", maxPushesServed), http.StatusServiceUnavailable)
		return
	}
	body, ok := e.readBody(w, r)
	if !ok {
		return
	}
	sender, ws, err := decodeWritesBody(body)
	if err != nil {
		http.Error(w, "bad writes body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(ws) > 0 {
		stored, err := e.store.MergeTentative(ws)
		if err != nil {
			e.logger.Warn("merging pushed writes failed", "from", sender, "writes", len(ws), "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if len(stored) > 0 {
			e.stats.repairPulled.Add(uint64(len(stored)))
			e.Broadcast(stored)
			e.logger.Debug("anti-entropy: peer pushed writes", "from", sender, "writes", len(ws), "new", len(stored))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveDigest answers a digest page with this node's writes the sender lacks (or holds older)
// and the keys where the sender is newer.
func (e *Engine) serveDigest(w http.ResponseWriter, r *http.Request) {
	body, ok := e.readBody(w, r)
	if !ok {
		return
	}
	page, err := decodeDigestPage(body)
	if err != nil {
		http.Error(w, "bad digest: "+err.Error(), http.StatusBadRequest)
		return
	}
	to := ""
	if page.HasTo {
		to = page.To
	}
	own, err := e.store.TentativeDigest(page.From, to)
	if err != nil {
		e.logger.Warn("anti-entropy: reading the tentative digest failed", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rep := &digestReply{}
	var send []string
	for k, v := range own {
		if !page.contains(k) {
			continue
		}
		if theirs, ok := page.Entries[k]; !ok || v.Newer(theirs) {
			send = append(send, k)
		}
	}
	for k, theirs := range page.Entries {
		if !page.contains(k) {
			continue
		}
		if mine, ok := own[k]; !ok || theirs.Newer(mine) {
			rep.Newer = append(rep.Newer, k)
		}
	}
	slices.Sort(send)
	rep.Writes, rep.Truncated, err = e.collect(send, page.Entries)
	if err != nil {
		e.logger.Warn("anti-entropy: reading tentative writes failed", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	e.stats.aeServed.Add(1)
	e.stats.repairPushed.Add(uint64(len(rep.Writes)))
	writeBinary(w, encodeDigestReply(rep))
}

// collect reads the writes of keys, in order, until the transfer budget; truncated reports that
// some were left for the next request. A write no newer than skip's version of its key (the
// entry changed since the digest) is left out.
func (e *Engine) collect(keys []string, skip map[string]consistency.Version) (ws []replication.Write, truncated bool, err error) {
	size := 0
	err = e.readTentative(keys, func(batch []replication.Write) bool {
		for _, w := range batch {
			if v, ok := skip[w.Key]; ok && !w.Value.Version.Newer(v) {
				continue
			}
			n := writeSize(w)
			if size+n > e.cfg.transferBudget && len(ws) > 0 {
				truncated = true
				return false
			}
			size += n
			ws = append(ws, w)
		}
		return true
	})
	if err != nil {
		return nil, false, err
	}
	return ws, truncated, nil
}

// readTentative reads the tentative writes of keys, in order, and hands them to fn a group at a
// time until fn returns false. A group is getBatch keys at most, and fewer when the writes are
// large: the first is firstGetBatch keys, and each next one is sized from the writes read so far
// to about the transfer budget. Reading getBatch keys at once, a digest reply over values of
// 1 MiB read 256 MiB from the store to send 4 MiB.
func (e *Engine) readTentative(keys []string, fn func([]replication.Write) bool) error {
	group, read, bytes := firstGetBatch, 0, 0
	for start := 0; start < len(keys); {
		end := min(start+group, len(keys))
		ws, err := e.store.GetTentative(keys[start:end])
		if err != nil {
			return err
		}
		for _, w := range ws {
			read++
			bytes += writeSize(w)
		}
		if !fn(ws) {
			return nil
		}
		start = end
		group = getBatch
		if read > 0 {
			group = max(1, min(getBatch, e.cfg.transferBudget/max(1, bytes/read)))
		}
	}
	return nil
}

// writeSize approximates a write's encoded size.
func writeSize(w replication.Write) int {
	return 32 + len(w.Key) + len(w.Value.Data) + len(w.Value.Version.Node)
}

func (e *Engine) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(e.cfg.maxBody)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body larger than %d bytes", e.cfg.maxBody), http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		}
		return nil, false
	}
	return body, true
}

func writeBinary(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// getWrites fetches keys' tentative writes from the node serving HTTP at addr.
func (e *Engine) getWrites(ctx context.Context, addr string, keys []string) ([]replication.Write, error) {
	q := url.Values{"key": keys}
	body, err := e.call(ctx, http.MethodGet, addr, PathWrites+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	_, ws, err := decodeWritesBody(body)
	return ws, err
}

// call makes one internal request and returns the response body (bounded by maxBody).
func (e *Engine) call(ctx context.Context, method, addr, path string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerLabel, e.cfg.Label)
	req.Header.Set(headerFrom, e.cfg.NodeID)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, int64(e.cfg.maxBody)+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, addr, err)
	}
	if len(out) > e.cfg.maxBody {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, addr, e.cfg.maxBody)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s%s: %s: %s", method, addr, path, resp.Status, strings.TrimSpace(string(out)))
	}
	return out, nil
}
