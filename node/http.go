package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/node/ui"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/fault"
	"github.com/dialkv/dialkv/replication/store"
)

func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/kv/{key...}", n.handleGet)
	mux.HandleFunc("GET /v1/kv", n.handleList)
	mux.HandleFunc("PUT /v1/kv/{key...}", n.handlePut)
	mux.HandleFunc("DELETE /v1/kv/{key...}", n.handleDelete)
	mux.HandleFunc("GET /v1/status", n.handleStatus)
	mux.HandleFunc("POST /v1/cluster/join", n.handleJoin)
	mux.HandleFunc("DELETE /v1/cluster/members/{id}", n.handleRemoveMember)
	mux.HandleFunc("GET /v1/cluster/members/{id}", n.handleMember)
	mux.HandleFunc("GET /v1/internal/readindex", n.handleReadIndex)
	if !n.cfg.noProposeRoute {
		mux.HandleFunc("POST /v1/internal/propose", n.handlePropose)
	}
	mux.HandleFunc("POST /v1/internal/commit", n.handleCommit)
	mux.HandleFunc("POST /v1/internal/leave", n.handleLeave)
	mux.Handle("/v1/internal/gossip/", n.gossip.Handler())
	mux.HandleFunc("GET /v1/health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": n.cfg.ID})
	})
	mux.HandleFunc("GET /v1/health/ready", n.handleReady)
	mux.Handle("GET /metrics", n.metrics.handler())
	mux.HandleFunc("GET /v1/stats", n.handleStats)
	mux.Handle("GET /ui/", ui.Handler())
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	// The dashboard is what a person opening a node's address wants. Found, not Moved
	// Permanently: a browser would remember a permanent one for good.
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	if n.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /v1/test/faults", n.handleFaults)
	mux.HandleFunc("PUT /v1/test/faults", n.handleFaults)
	mux.HandleFunc("DELETE /v1/test/faults", n.handleFaults)
	// Last in precedence: whatever no pattern above takes gets the JSON error body too, instead
	// of the mux's own text answers.
	mux.Handle("/", n.unrouted(mux))
	return n.boundIO(n.withRequestID(n.instrument(fault.Middleware(n.faults, n.keyRoutes(mux)))))
}

// routeMethods are the methods the routes use (GET also serves HEAD), in Allow's order.
var routeMethods = []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut}

// unrouted answers a request that no route of mux takes, as the mux would but with the JSON error
// body: 405 with an Allow header when routes take the path with other methods, else 404. It
// reports the metadata a key answer does, as far as it is known without a level or a key (the
// node, its leader and applied index): a POST to a key is answered here.
func (n *Node) unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range routeMethods {
			probe := *r
			probe.Method = m
			if _, pattern := mux.Handler(&probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			n.keyError(w, r, answer{staleness: -1}, fmt.Errorf("%w: %s %s (it takes %s)", errMethodNotAllowed, r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		n.keyError(w, r, answer{staleness: -1}, fmt.Errorf("%w: %s (docs/http-api.md lists them)", errNoRoute, r.URL.Path))
	})
}

// keyRoutes sends key requests (GET, PUT and DELETE of /v1/kv/KEY) straight to their handlers
// and everything else to mux, which routes them the same way but allocated five objects per
// request matching the pattern (3 % of a node's CPU on a read load). A path that mux would
// clean and redirect (an empty segment or a dot segment anywhere), or whose /v1/kv/ prefix is
// only there once unescaped (mux matches the escaped segments), still goes through mux.
func (n *Node) keyRoutes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, "/v1/kv/")
		if r.URL.RawPath != "" && !strings.HasPrefix(r.URL.RawPath, "/v1/kv/") {
			ok = false
		}
		var h func(http.ResponseWriter, *http.Request)
		switch r.Method {
		case http.MethodGet:
			h = n.handleGet
		case http.MethodPut:
			h = n.handlePut
		case http.MethodDelete:
			h = n.handleDelete
		}
		info := infoOf(r)
		if !ok || h == nil || key == "" || info == nil || strings.Contains(r.URL.Path, "//") || strings.Contains(r.URL.Path, "/.") {
			mux.ServeHTTP(w, r)
			return
		}
		info.key, info.routed = key, true
		h(w, r)
	})
}

type ctxKey int

const requestInfoKey ctxKey = 0

// requestInfo is what the outermost middleware learns of a request once, for the handlers and
// the other middleware: its id and, for a key request, its key.
type requestInfo struct {
	id string
	// key is the key a key request names, set by keyRoutes (routed says it did).
	key    string
	routed bool
}

// withRequestID gives every request an id (the caller's X-Request-Id, or a new one) that is
// echoed in the response, passed on when forwarding, and logged.
func (n *Node) withRequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &requestInfo{id: r.Header.Get(client.HeaderRequestID)}
		if info.id == "" || len(info.id) > 128 {
			info.id = requestIDs.next()
		}
		hs := newHeaderSetter(w.Header(), 2)
		hs.set(client.HeaderRequestID, info.id)
		hs.set(client.HeaderNode, n.cfg.ID)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestInfoKey, info)))
	})
}

func infoOf(r *http.Request) *requestInfo {
	info, _ := r.Context().Value(requestInfoKey).(*requestInfo)
	return info
}

// queryOf is r's query.
func queryOf(r *http.Request) query {
	return query(r.URL.RawQuery)
}

func requestID(r *http.Request) string {
	if info := infoOf(r); info != nil {
		return info.id
	}
	return ""
}

// requestIDs names the requests that come without an id. An id only has to tell requests apart
// in logs across nodes and restarts, so a random prefix drawn once per process (48 bits) and a
// counter do, without asking the kernel for randomness per request.
var requestIDs = newIDSource()

type idSource struct {
	prefix string // 12 random hex digits
	count  atomic.Uint64
}

func newIDSource() *idSource {
	var b [6]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return &idSource{prefix: hex.EncodeToString(b[:])}
}

// next returns "<prefix>-<counter in base 36>", e.g. "3f9a0c12e4b7-1k2".
func (s *idSource) next() string {
	var b [32]byte
	id := append(b[:0], s.prefix...)
	id = append(id, '-')
	return string(strconv.AppendUint(id, s.count.Add(1), 36))
}

// statusRecorder remembers the status an answer was sent with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// instrument counts and times key requests (metrics, /v1/stats) and logs requests: at debug
// level normally, at info when forwarded (on both nodes) or failed, so one request can be
// followed across nodes by its id at the default level.
func (n *Node) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		took := time.Since(start)
		code := w.Header().Get(client.HeaderError)
		if op, level, ok := requestLabels(r, queryOf(r)); ok {
			out := outcome(rec.status, code)
			n.metrics.requests.WithLabelValues(op, level, out).Inc()
			n.metrics.latency.WithLabelValues(op, level, out).Observe(took.Seconds())
			n.recent.observe(start.Add(took), level, took, rec.status >= 500)
		}
		forwardedBy, via := r.Header.Get(client.HeaderForwarded), w.Header().Get(client.HeaderVia)
		lvl := slog.LevelDebug
		if forwardedBy != "" || via != "" || rec.status >= 500 {
			lvl = slog.LevelInfo
		}
		if n.logger.Enabled(r.Context(), lvl) {
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "took", took.Round(time.Microsecond)}
			if code != "" {
				attrs = append(attrs, "code", code)
			}
			if forwardedBy != "" {
				attrs = append(attrs, "forwarded_by", forwardedBy)
			}
			if via != "" {
				attrs = append(attrs, "forwarded_to", w.Header().Get(client.HeaderNode))
			}
			n.reqLogger(r).Log(r.Context(), lvl, "request", attrs...)
		}
	})
}

// handleStats serves this node's last minutes of activity (dashboards fetch it from every node,
// hence the CORS header).
func (n *Node) handleStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, n.recent.snapshot(n.cfg.ID, time.Now()))
}

func (n *Node) reqLogger(r *http.Request) *slog.Logger {
	return n.logger.With("request_id", requestID(r))
}

func wantsJSON(r *http.Request) bool {
	return r.Header.Get("Accept") == "application/json"
}

// writeAnswer sends a key operation's JSON answer (200). It is compact: programs read it (the Go
// client, kvctl, which prints its own layout), and indenting cost CPU on every read. ?pretty
// indents it for a human with curl.
func writeAnswer(w http.ResponseWriter, r *http.Request, v any) {
	// query.check refused a pretty that is no boolean before the request was served.
	indent, _ := queryOf(r).Bool("pretty")
	sendJSON(w, http.StatusOK, v, indent)
}

// answer is what a successful key operation reports.
type answer struct {
	level     consistency.Level
	version   consistency.Version
	state     string
	staleness time.Duration // < 0: unknown
	session   sessionToken
	via       forwardedVia // a write this node forwarded: the leader's view
	// read marks a read's answer: applied is then the applied index of the state it read (for
	// a key, the index applied before the read, which the value reflects at least). Reading
	// the index when answering could count a write committed after the read, which the value
	// misses. Other answers report the node's applied index when they are built.
	read    bool
	applied uint64
}

func (n *Node) setMeta(w http.ResponseWriter, a answer) client.Meta {
	leader, _ := n.raft.Leader()
	m := client.Meta{
		Consistency:  a.level.String(),
		Node:         n.cfg.ID,
		Leader:       leader,
		Version:      a.version.String(),
		AppliedIndex: a.applied,
		State:        a.state,
		Session:      n.settleSession(a.session).String(),
	}
	if !a.read {
		m.AppliedIndex = n.store.AppliedIndex()
	}
	if a.via.leader != "" {
		// The leader proposed it: answer as it would have, naming this node as the relay.
		m.Node, m.Leader, m.Via = a.via.leader, a.via.leader, n.cfg.ID
		m.AppliedIndex = max(m.AppliedIndex, a.via.applied)
	}
	if a.staleness >= 0 {
		m.Staleness = a.staleness.String()
		if a.level != consistency.Strong {
			n.metrics.staleness.WithLabelValues(a.level.String()).Observe(a.staleness.Seconds())
		}
	}
	hs := newHeaderSetter(w.Header(), 9)
	if m.Via != "" {
		hs.set(client.HeaderNode, m.Node)
		hs.set(client.HeaderVia, m.Via)
	}
	hs.setNonEmpty(client.HeaderConsistency, m.Consistency)
	hs.set(client.HeaderLeader, m.Leader)
	hs.set(client.HeaderAppliedIndex, strconv.FormatUint(m.AppliedIndex, 10))
	hs.setNonEmpty(client.HeaderVersion, m.Version)
	hs.setNonEmpty(client.HeaderState, m.State)
	hs.setNonEmpty(client.HeaderStaleness, m.Staleness)
	hs.setNonEmpty(client.HeaderSession, m.Session)
	return m
}

// keyError answers a key request with err and a's metadata, as every key answer reports it
// (writeKeyError).
func (n *Node) keyError(w http.ResponseWriter, r *http.Request, a answer, err error) {
	writeKeyError(w, r, n.setMeta(w, a), err)
}

// writeKeyError sends a key request's error answer, whose metadata m setMeta has put in the
// headers: with Accept: application/json the body's meta holds it too, as a successful answer's
// does (DESIGN.md: every response reports its metadata, in the JSON body when one is asked for).
func writeKeyError(w http.ResponseWriter, r *http.Request, m client.Meta, err error) {
	if wantsJSON(r) {
		writeErrorMeta(w, err, &m)
		return
	}
	writeError(w, err)
}

// refuseKey answers a key request refused before it was served (a key, parameter, session token
// or value it cannot take) with the metadata known then: the leader, the applied index, and the
// level asked for when it parses. Without them a 400 or 413 said less than every other answer
// (only which node refused it), and a script reading the headers found nothing where it looks.
func (n *Node) refuseKey(w http.ResponseWriter, r *http.Request, read bool, err error) {
	parse := consistency.ParseWrite
	if read {
		parse = consistency.ParseRead
	}
	level, _ := parse(queryOf(r).Get("consistency"))
	n.keyError(w, r, answer{level: level, staleness: -1}, err)
}

// headerSetter sets several response headers from one allocation: http.Header.Set allocates a
// one-element slice per header, and an answer sends up to ten. Keys must be in canonical form
// (client's Header constants are).
type headerSetter struct {
	h    http.Header
	vals []string
}

func newHeaderSetter(h http.Header, n int) headerSetter {
	return headerSetter{h: h, vals: make([]string, 0, n)}
}

func (s *headerSetter) set(key, value string) {
	if len(s.vals) == cap(s.vals) {
		s.h[key] = []string{value}
		return
	}
	s.vals = append(s.vals, value)
	// Capacity 1: a later Header.Add copies instead of writing into the next header's value.
	s.h[key] = s.vals[len(s.vals)-1 : len(s.vals) : len(s.vals)]
}

func (s *headerSetter) setNonEmpty(key, value string) {
	if value != "" {
		s.set(key, value)
	}
}

func toKV(key string, v consistency.Value, state string) client.KV {
	kv := client.NewKV(key, v.Data)
	kv.Version, kv.State = v.Version.String(), state
	return kv
}

// pathKey is the key r's path names ("" for none).
func pathKey(r *http.Request) string {
	if info := infoOf(r); info != nil && info.routed {
		return info.key
	}
	return r.PathValue("key")
}

// keyOf is the request's key. A key the store cannot hold (store.CheckKey) is refused here: in a
// log entry it would only be refused again on every replica.
func keyOf(r *http.Request) (string, error) {
	key := pathKey(r)
	if key == "" {
		return "", fmt.Errorf("%w: the key is empty", replication.ErrInvalid)
	}
	return key, store.CheckKey(key)
}

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	if pathKey(r) == "" {
		n.handleList(w, r)
		return
	}
	key, err := keyOf(r)
	if err != nil {
		n.refuseKey(w, r, true, err)
		return
	}
	p, err := n.parseRead(r, getParams)
	if err != nil {
		n.refuseKey(w, r, true, err)
		return
	}
	level := p.level
	a, err := n.prepareRead(r, level, p.bound, p.token, key)
	if err != nil {
		if level == consistency.Session && errors.Is(err, replication.ErrStale) && n.relaySessionRead(w, r, p.token, key) {
			return
		}
		n.keyError(w, r, answer{level: level, staleness: -1, session: p.token}, err)
		return
	}
	var v consistency.Value
	var ok bool
	if level == consistency.Eventual || level == consistency.Session {
		v, a.state, ok, err = n.newest(key)
	} else {
		v, ok, err = n.store.Get(key)
	}
	if err != nil {
		n.keyError(w, r, answer{level: level, staleness: -1, session: a.session}, err)
		return
	}
	if n.cfg.beforeAnswer != nil {
		n.cfg.beforeAnswer()
	}
	a.version = v.Version
	a.session = a.session.saw(key, v.Version)
	m := n.setMeta(w, a)
	if !ok || v.Tombstone {
		writeKeyError(w, r, m, fmt.Errorf("%w: %q", replication.ErrNotFound, key))
		return
	}
	if wantsJSON(r) {
		writeAnswer(w, r, client.ValueResponse{KV: toKV(key, v, a.state), Meta: m})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(v.Data)
}

// One list answer holds at most maxListKeys keys, and stops before the key that would take
// its keys and values past maxListBytes (it always holds one, whatever its size); more and next
// then tell the caller where to go on. The answer is built whole in memory, several times over
// (the records read, their JSON form with base64 for bytes that are not UTF-8, the encoded
// body), and a node serves lists concurrently, so one answer must stay a few MiB: 4 MiB is a
// few thousand values of a KiB, or four of the largest (1 MiB by default), and 10,000 keys
// bound the per-key overhead (versions, JSON fields) when values are tiny. A list under both
// caps is one answer, as before paging. Both also bound how long the read transaction stays
// open.
const (
	maxListKeys  = 10_000
	maxListBytes = 4 << 20
)

// maxListScan bounds the records one list answer reads, deleted keys included. A deleted key
// counts against neither cap above, and waits as a tombstone until purged, which a member that
// stays away holds back for as long as it does: without this bound an answer of one key could
// read through millions of them, in one read transaction (it keeps the committed layer's file
// from growing meanwhile, stalling the writer that needs it to). An answer cut here may hold
// fewer keys than asked for, even none, with more and next (a deleted key) to go on from.
const maxListScan = 10 * maxListKeys

func (n *Node) handleList(w http.ResponseWriter, r *http.Request) {
	q := queryOf(r)
	p, err := n.parseRead(r, listParams)
	if err != nil {
		n.refuseKey(w, r, true, err)
		return
	}
	lr, err := n.parseListRange(q)
	if err != nil {
		n.refuseKey(w, r, true, err)
		return
	}
	a, err := n.prepareRead(r, p.level, p.bound, p.token, "")
	if err == nil && p.level == consistency.Session {
		err = n.commitSessionWritesIn(r.Context(), r.Header.Get(client.HeaderForwarded) != "", p.token, lr)
	}
	if err != nil {
		if p.level == consistency.Session && errors.Is(err, replication.ErrStale) && n.relaySessionRead(w, r, p.token, "") {
			return
		}
		n.keyError(w, r, answer{level: p.level, staleness: -1, session: p.token}, err)
		return
	}
	if n.cfg.beforeList != nil {
		n.cfg.beforeList()
	}
	items, more, next, applied, err := n.store.List(lr)
	if err != nil {
		n.keyError(w, r, answer{level: p.level, staleness: -1, session: p.token}, err)
		return
	}
	if n.cfg.beforeAnswer != nil {
		n.cfg.beforeAnswer()
	}
	// The state listed may be newer than the index prepareRead saw: the session read at it,
	// and the answer reports it.
	a.session = a.session.advance(applied)
	a.applied = applied
	resp := client.ListResponse{Items: []client.KV{}, More: more, Meta: n.setMeta(w, a)}
	for _, it := range items {
		resp.Items = append(resp.Items, toKV(it.Key, it.Value, client.StateCommitted))
	}
	if more {
		// next goes back as after (after_base64 when it is not UTF-8, as keys do).
		nk := client.NewKV(next, nil)
		resp.Next, resp.NextBase64 = nk.Key, nk.KeyBase64
	}
	writeAnswer(w, r, resp)
}

// parseListRange reads a list's prefix, limit and after (or after_base64), and caps the answer
// at the node's page size.
func (n *Node) parseListRange(q query) (store.ListRange, error) {
	lr := store.ListRange{Prefix: q.Get("prefix"), After: q.Get("after"), MaxBytes: cmp.Or(n.cfg.listPageBytes, maxListBytes), MaxScan: cmp.Or(n.cfg.listPageScan, maxListScan)}
	if s := q.Get("limit"); s != "" {
		var err error
		if lr.Limit, err = strconv.Atoi(s); err != nil || lr.Limit < 0 {
			return lr, fmt.Errorf("%w: limit %q is not a non-negative number", replication.ErrInvalid, s)
		}
	}
	if q.Has("after_base64") {
		if q.Has("after") {
			return lr, fmt.Errorf("%w: after and after_base64 exclude each other: send the one the answer's next or next_base64 gave", replication.ErrInvalid)
		}
		s := q.Get("after_base64")
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return lr, fmt.Errorf("%w: after_base64 %q is not standard base64 (in a URL, + must be escaped as %%2B): %v", replication.ErrInvalid, s, err)
		}
		lr.After = string(b)
	}
	if pageKeys := cmp.Or(n.cfg.listPageKeys, maxListKeys); lr.Limit == 0 || lr.Limit > pageKeys {
		lr.Limit = pageKeys
	}
	return lr, nil
}

// readParams are what every read names: its level, its staleness bound and the session token.
type readParams struct {
	level consistency.Level
	bound time.Duration
	token sessionToken
}

// parseRead reads a read's parameters, refusing any not in allowed (query.check).
func (n *Node) parseRead(r *http.Request, allowed []string) (readParams, error) {
	q := queryOf(r)
	var p readParams
	err := q.check(allowed)
	if err != nil {
		return p, err
	}
	if p.level, err = consistency.ParseRead(q.Get("consistency")); err != nil {
		return p, err
	}
	if p.bound, err = n.maxStaleness(q.Get("max_staleness")); err != nil {
		return p, err
	}
	p.token, err = parseSession(r.Header.Get(client.HeaderSession))
	return p, err
}

func (n *Node) maxStaleness(s string) (time.Duration, error) {
	if s == "" {
		return n.cfg.DefaultMaxStaleness, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: max_staleness %q is not a positive duration (e.g. 500ms, 2s)", replication.ErrInvalid, s)
	}
	return d, nil
}

// writeRequest is a parsed PUT or DELETE.
type writeRequest struct {
	level consistency.Level
	cmd   replication.Command
	body  []byte
	// seen is the version of the key the request's session token records (zero: none): the
	// write must be stamped after it (stampedAfterSession).
	seen consistency.Version
}

func (n *Node) parseWrite(r *http.Request, typ replication.CommandType) (writeRequest, error) {
	key, err := keyOf(r)
	if err != nil {
		return writeRequest{}, err
	}
	q := queryOf(r)
	allowed := putParams
	if typ == replication.CmdDelete {
		allowed = deleteParams
	}
	if err := q.check(allowed); err != nil {
		return writeRequest{}, err
	}
	level, err := consistency.ParseWrite(q.Get("consistency"))
	if err != nil {
		return writeRequest{}, err
	}
	wr := writeRequest{level: level, cmd: replication.Command{Type: typ, Key: key}}
	if s := q.Get("if_version"); s != "" || q.Has("if_version") {
		v, err := consistency.ParseVersion(s)
		if err != nil {
			return wr, err
		}
		wr.cmd.Cond, wr.cmd.IfVersion = replication.CondIfVersion, v
	}
	// A bare if_absent means true, as a bare pretty does: taking it for absent would overwrite
	// the very value the caller meant to keep.
	absent, err := q.Bool("if_absent")
	if err != nil {
		return wr, err
	}
	if absent {
		if wr.cmd.Cond != replication.CondNone {
			return wr, fmt.Errorf("%w: if_version and if_absent exclude each other", replication.ErrInvalid)
		}
		wr.cmd.Cond = replication.CondIfAbsent
	}
	if wr.cmd.Cond != replication.CondNone && level == consistency.Eventual {
		return wr, fmt.Errorf("%w: conditional writes (if_version, if_absent) are strong only: a condition needs the single order of writes that only Raft gives; use consistency=strong", replication.ErrInvalid)
	}
	if typ == replication.CmdPut {
		tooLarge := func() error {
			return fmt.Errorf("%w: the value is over the %d-byte limit (kvd --max-value-size)", replication.ErrTooLarge, n.cfg.MaxValueSize)
		}
		if r.ContentLength > n.cfg.MaxValueSize {
			return wr, tooLarge() // announced: refused without reading it
		}
		body, err := readValue(r, n.cfg.MaxValueSize)
		if errors.Is(err, errOverloaded) {
			return wr, err
		}
		if err != nil {
			return wr, fmt.Errorf("%w: reading the value: %v", replication.ErrInvalid, err)
		}
		if int64(len(body)) > n.cfg.MaxValueSize {
			return wr, tooLarge()
		}
		wr.body = body
		wr.cmd.Value = body
	}
	return wr, nil
}

// readValue reads a put's body: into a buffer of its announced length (Content-Length, at most
// limit), which is what the write budget charged for it (admitWrite), or else up to limit+1
// bytes, growing as it goes.
func readValue(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength >= 0 && r.ContentLength <= limit {
		body := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, body)
		return body, err
	}
	return io.ReadAll(io.LimitReader(r.Body, limit+1))
}

func (n *Node) handlePut(w http.ResponseWriter, r *http.Request) {
	n.handleWrite(w, r, replication.CmdPut)
}
func (n *Node) handleDelete(w http.ResponseWriter, r *http.Request) {
	n.handleWrite(w, r, replication.CmdDelete)
}

func (n *Node) handleWrite(w http.ResponseWriter, r *http.Request, typ replication.CommandType) {
	held, err := n.admitWrite(r, typ)
	var wr writeRequest
	if err == nil {
		defer held.release()
		wr, err = n.parseWrite(r, typ)
	}
	if err != nil {
		if errors.Is(err, errOverloaded) && r.ContentLength != 0 {
			// Refused with its body (or the rest of it) unread: the server would read up to
			// 256 KiB of it before answering, to keep the connection, and a client sending it
			// slowly would wait for its 503 meanwhile. The connection is closed instead.
			w.Header().Set("Connection", "close")
		}
		n.refuseKey(w, r, false, err)
		return
	}
	token, err := parseSession(r.Header.Get(client.HeaderSession))
	if err != nil {
		n.refuseKey(w, r, false, err)
		return
	}
	n.observeSession(token)
	wr.seen = token.versionOf(wr.cmd.Key)
	if wr.level == consistency.Eventual {
		n.eventualWrite(w, r, wr, token)
		return
	}
	// One LeaderWait bounds the whole write, committing the session's eventual write first
	// included: with one each, a slow leader could hold the request for twice --leader-wait,
	// past the client's timeout for one attempt.
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.LeaderWait)
	defer cancel()
	if err := n.commitSessionVersionFirst(ctx, token, &wr.cmd); err != nil {
		n.keyError(w, r, answer{level: consistency.Strong, staleness: -1, session: token}, err)
		return
	}
	res, via, err := n.strongWrite(ctx, w, r, wr)
	if via.relayed {
		return // an older leader's own answer has been relayed
	}
	if err != nil {
		n.reqLogger(r).Debug("strong write failed", "key", wr.cmd.Key, "err", err)
		a := answer{level: consistency.Strong, staleness: -1, session: token, via: via}
		if ce := (*replication.ConflictError)(nil); errors.As(err, &ce) {
			// The key's live version, as the error body names it (none for a deleted key):
			// res.Version is the committed record's, a tombstone's there.
			a.version, a.state = ce.Current, client.StateCommitted
			// The session has seen that state of the key, judged at res.Index, as a read would
			// have: its later reads must show nothing older.
			a.session = token.advance(res.Index).saw(wr.cmd.Key, ce.Current)
		}
		n.keyError(w, r, a, err)
		return
	}
	a := answer{level: consistency.Strong, version: res.Version, state: client.StateCommitted, session: token.advance(res.Index).saw(wr.cmd.Key, res.Version), via: via}
	m := n.setMeta(w, a)
	if typ == replication.CmdDelete && !res.Existed {
		writeKeyError(w, r, m, fmt.Errorf("%w: %q (nothing to delete)", replication.ErrNotFound, wr.cmd.Key))
		return
	}
	if wantsJSON(r) {
		writeAnswer(w, r, client.ValueResponse{KV: toKV(wr.cmd.Key, consistency.Value{Version: res.Version}, client.StateCommitted), Meta: m})
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	var j client.JoinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&j); err != nil {
		writeError(w, fmt.Errorf("%w: join body: %v", replication.ErrInvalid, err))
		return
	}
	body, _ := json.Marshal(j)
	n.onLeader(w, r, body, func(ctx context.Context) error {
		if _, err := n.addMember(ctx, j); err != nil {
			return err
		}
		n.reqLogger(r).Info("member joined or re-registered", "id", j.ID, "raft", j.RaftAddr, "http", j.HTTPAddr)
		return nil
	})
}

// handleReadIndex gives a follower a linearizable read index. Leader only.
func (n *Node) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.LeaderWait)
	defer cancel()
	index, err := n.raft.ReadIndex(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.ReadIndexResponse{Index: index, Term: n.raft.Term()})
}

// handleFaults reads or sets the test-only faults of this node (docs/faults.md). A node started
// without --test-faults answers 403 to all of it.
func (n *Node) handleFaults(w http.ResponseWriter, r *http.Request) {
	if !n.faults.Enabled() {
		writeError(w, fault.ErrDisabled)
		return
	}
	switch r.Method {
	case http.MethodPut:
		var f fault.Faults
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeError(w, fmt.Errorf("%w: faults body: %v", replication.ErrInvalid, err))
			return
		}
		if err := n.faults.Set(f); err != nil {
			writeError(w, fmt.Errorf("%w: %v", replication.ErrInvalid, err))
			return
		}
		n.reqLogger(r).Warn("faults injected", "faults", f)
	case http.MethodDelete:
		n.faults.Heal()
		n.reqLogger(r).Info("faults healed")
	}
	writeJSON(w, http.StatusOK, n.faults.Get())
}
