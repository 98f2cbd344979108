package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dialkv/dialkv/consistency"
)

// Consistency levels (DESIGN.md). Writes take strong or eventual, reads all four; "" lets the
// server choose, which is strong.
const (
	ConsistencyStrong   = "strong"
	ConsistencyBounded  = "bounded"
	ConsistencySession  = "session"
	ConsistencyEventual = "eventual"
)

var (
	// ErrBadOptions is returned, wrapped, for option combinations no server would accept.
	ErrBadOptions = errors.New("client: bad options")
	// ErrBadAnswer is returned, wrapped, when a server answered with success but the answer is
	// not what docs/http-api.md defines (a body that is not its JSON, a value that does not
	// decode). Unlike a transport error, an answer came.
	ErrBadAnswer = errors.New("bad answer")
	// ErrNoAnswer is in the chain (errors.Is) of a call that no server answered: every endpoint
	// refused the connection, was unreachable or timed out, or the caller's context ended
	// first. Such a call changed nothing: a write that may have reached a server before its
	// answer was lost is reported as IsOutcomeUnknown instead, without ErrNoAnswer.
	ErrNoAnswer = errors.New("no server answered")
)

// PutOptions qualify a Put. Setting IfVersion or IfAbsent makes it a compare-and-set, strong
// only: with ConsistencyEventual, Put refuses it (ErrBadOptions) without sending it.
type PutOptions struct {
	// Consistency is strong or eventual; "" means strong.
	Consistency string
	// IfVersion, when set, writes only if the key's current committed version is exactly this
	// (the text form the server reported, e.g. Meta.Version).
	IfVersion string
	// IfAbsent writes only if the key does not exist.
	IfAbsent bool
	// Session, when set, is sent and updated (see Session).
	Session *Session
}

// GetOptions qualify a Get.
type GetOptions struct {
	// Consistency is strong, bounded, session or eventual; "" means strong.
	Consistency string
	// MaxStaleness bounds a bounded read; zero means the server's default (1s).
	MaxStaleness time.Duration
	// Session, when set, is sent and updated (see Session).
	Session *Session
}

// DeleteOptions qualify a Delete.
type DeleteOptions struct {
	// Consistency is strong or eventual; "" means strong.
	Consistency string
	// IfVersion, when set, deletes only if the key's current committed version is exactly this.
	IfVersion string
	// Session, when set, is sent and updated (see Session).
	Session *Session
}

// ListOptions qualify a List.
type ListOptions struct {
	// Consistency is the read level; "" means strong.
	Consistency string
	// MaxStaleness bounds a bounded read; zero means the server's default.
	MaxStaleness time.Duration
	// Limit caps the number of keys: in all for List and ListPages, in the one answer for
	// ListPage. Zero means every key for List and ListPages, and the server's page size for
	// ListPage (docs/http-api.md: at most 10,000 keys or 4 MiB).
	Limit int
	// After lists only the keys strictly greater than it, in key order ("" from the first
	// key); ListResponse.NextKey gives the one to go on after. Any bytes.
	After string
	// Session, when set, is sent and updated (see Session).
	Session *Session
}

// Client talks to a dialkv cluster. It is safe for concurrent use; create one and share it, so
// connections are reused.
type Client struct {
	// endpoints are base URLs ("http://host:port"), in the configured order.
	endpoints []string
	timeout   time.Duration
	http      *http.Client
	// traced is true when the transport reports connection events (net/http/httptrace), which
	// is what lets the client know a failed write never left it.
	traced bool
	// preferred is the index of the endpoint that last answered; calls start there, unless
	// preferFirst is set (Config.PreferFirst).
	preferred   atomic.Int32
	preferFirst bool
}

// New returns a client for the cluster cfg names.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cl := &Client{timeout: cfg.Timeout, http: cfg.HTTPClient, preferFirst: cfg.PreferFirst}
	if cl.timeout == 0 {
		cl.timeout = DefaultTimeout
	}
	if cl.http == nil {
		dial := cfg.DialTimeout
		if dial == 0 {
			dial = DefaultDialTimeout
		}
		cl.http = newHTTPClient(min(dial, cl.timeout))
	}
	switch cl.http.Transport.(type) {
	case nil, *http.Transport:
		cl.traced = true
	}
	for _, e := range cfg.Endpoints {
		base, err := endpointURL(e)
		if err != nil {
			return nil, err
		}
		cl.endpoints = append(cl.endpoints, base)
	}
	return cl, nil
}

// Put writes value under key and returns the write's metadata (Meta.Version is the version it
// got). On a failed condition the error satisfies IsConflict; a write that may or may not have
// happened satisfies IsOutcomeUnknown.
func (cl *Client) Put(ctx context.Context, key string, value []byte, opts PutOptions) (Meta, error) {
	if opts.IfVersion != "" && opts.IfAbsent {
		return Meta{}, fmt.Errorf("%w: IfVersion and IfAbsent exclude each other", ErrBadOptions)
	}
	if err := strongOnly(opts.Consistency, opts.IfVersion != "" || opts.IfAbsent); err != nil {
		return Meta{}, err
	}
	path, err := keyPath(key)
	if err != nil {
		return Meta{}, err
	}
	q := url.Values{}
	setLevel(q, opts.Consistency)
	if opts.IfVersion != "" {
		q.Set("if_version", opts.IfVersion)
	}
	if opts.IfAbsent {
		q.Set("if_absent", "true")
	}
	if value == nil {
		value = []byte{} // an empty value is a value: send an empty body, not none.
	}
	rep, err := cl.do(ctx, call{method: http.MethodPut, path: path, query: q, body: value, session: opts.Session})
	return writeMeta(rep), err
}

// Get reads key. It returns the value and the metadata of the answer; the metadata is filled
// also on server errors (a 404 says which node found nothing, at which applied index). A missing
// key is an error that satisfies IsNotFound.
func (cl *Client) Get(ctx context.Context, key string, opts GetOptions) ([]byte, Meta, error) {
	path, err := keyPath(key)
	if err != nil {
		return nil, Meta{}, err
	}
	q := url.Values{}
	setLevel(q, opts.Consistency)
	setStaleness(q, opts.MaxStaleness)
	rep, err := cl.do(ctx, call{method: http.MethodGet, path: path, query: q, read: true, session: opts.Session})
	if rep == nil {
		return nil, Meta{}, err
	}
	meta := metaFromHeader(rep.header)
	if err != nil {
		return nil, meta, err
	}
	if !isJSON(rep.header) {
		// A server that ignores Accept answers the bare value; the headers carry the metadata.
		if rep.body == nil {
			return []byte{}, meta, nil
		}
		return rep.body, meta, nil
	}
	var vr ValueResponse
	if err := json.Unmarshal(rep.body, &vr); err != nil {
		return nil, meta, fmt.Errorf("client: GET %s from %s: %w: %w", key, rep.endpoint, ErrBadAnswer, err)
	}
	value, err := vr.KV.Bytes()
	if err != nil {
		return nil, meta, fmt.Errorf("client: GET %s from %s: %w: %w", key, rep.endpoint, ErrBadAnswer, err)
	}
	return value, withKV(meta.merge(vr.Meta), vr.KV), nil
}

// Delete deletes key (writes a tombstone) and returns the write's metadata. Deleting a missing
// key strongly is an error that satisfies IsNotFound; an eventual delete always succeeds (the
// node that takes it cannot know whether another holds a value).
func (cl *Client) Delete(ctx context.Context, key string, opts DeleteOptions) (Meta, error) {
	if err := strongOnly(opts.Consistency, opts.IfVersion != ""); err != nil {
		return Meta{}, err
	}
	path, err := keyPath(key)
	if err != nil {
		return Meta{}, err
	}
	q := url.Values{}
	setLevel(q, opts.Consistency)
	if opts.IfVersion != "" {
		q.Set("if_version", opts.IfVersion)
	}
	rep, err := cl.do(ctx, call{method: http.MethodDelete, path: path, query: q, session: opts.Session})
	return writeMeta(rep), err
}

// List returns the live keys that start with prefix ("" for all) in key order, every one of them
// or opts.Limit, with the metadata of the last answer. It reads them page by page (ListPages),
// so a list longer than a page is not one read: see ListPages. A key or value that is not
// valid UTF-8 comes base64-encoded: read them with KV.RawKey and KV.Bytes.
func (cl *Client) List(ctx context.Context, prefix string, opts ListOptions) ([]KV, Meta, error) {
	items := []KV{}
	meta, err := cl.ListPages(ctx, prefix, opts, func(page *ListResponse) error {
		items = append(items, page.Items...)
		return nil
	})
	if err != nil {
		return nil, meta, err
	}
	return items, meta, nil
}

// ListPages calls fn with each answer (page) of the live keys that start with prefix, in key
// order, going on after each page's NextKey until no key is left, opts.Limit keys have been
// listed (the last page then has More set when keys are left, and NextKey to go on after),
// or fn returns an error, which ListPages returns. A page may hold no key (the server stopped
// after reading deleted keys only). Only one page is in memory at a time.
//
// Each page is a separate read at opts.Consistency, as a Get is: a key written or deleted
// between two pages may be in the list or not, as in etcd's paged range without a revision.
// opts.Session, when set, is sent and updated with every page. The Meta returned is the last
// answer's (the failed one's, on a server error).
func (cl *Client) ListPages(ctx context.Context, prefix string, opts ListOptions, fn func(*ListResponse) error) (Meta, error) {
	if opts.Limit < 0 {
		return Meta{}, fmt.Errorf("%w: negative limit %d", ErrBadOptions, opts.Limit)
	}
	pageOpts, listed := opts, 0
	for {
		if opts.Limit > 0 {
			pageOpts.Limit = opts.Limit - listed
		}
		page, err := cl.ListPage(ctx, prefix, pageOpts)
		if err != nil {
			return page.Meta, err
		}
		if pageOpts.After != "" && len(page.Items) > 0 {
			// A node older than paging ignores after and starts over (possibly after another
			// node gave the first pages): its keys would be listed twice.
			if first, err := page.Items[0].RawKey(); err != nil || first <= pageOpts.After {
				return page.Meta, fmt.Errorf("client: list %q: asked for keys after %q, a node listed %q first: it ignores after (older than paging?)", prefix, pageOpts.After, first)
			}
		}
		listed += len(page.Items)
		if err := fn(page); err != nil {
			return page.Meta, err
		}
		if !page.More || opts.Limit > 0 && listed >= opts.Limit {
			return page.Meta, nil
		}
		next, err := page.NextKey()
		if err != nil {
			return page.Meta, err
		}
		// A server that ignores after would hand back the same page for ever.
		if next <= pageOpts.After {
			return page.Meta, fmt.Errorf("client: list %q: an answer says more keys are left but gives no next key past %q (a node older than paging?)", prefix, pageOpts.After)
		}
		pageOpts.After = next
	}
}

// ListPage reads one answer of List: at most opts.Limit keys (and never more than the server's
// page size), after opts.After. ListResponse.More is true when keys were left out, and NextKey
// is then the key to pass as the next call's After. Meta merges the answer's headers and body;
// it is filled also on server errors.
func (cl *Client) ListPage(ctx context.Context, prefix string, opts ListOptions) (*ListResponse, error) {
	if opts.Limit < 0 {
		return &ListResponse{}, fmt.Errorf("%w: negative limit %d", ErrBadOptions, opts.Limit)
	}
	q := url.Values{}
	q.Set("prefix", prefix)
	setLevel(q, opts.Consistency)
	setStaleness(q, opts.MaxStaleness)
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.After != "" {
		// A query parameter carries any bytes, escaped; after_base64 is for callers that hold
		// only an answer's next_base64.
		q.Set("after", opts.After)
	}
	rep, err := cl.do(ctx, call{method: http.MethodGet, path: "/v1/kv", query: q, read: true, session: opts.Session})
	if rep == nil {
		return &ListResponse{}, err
	}
	meta := metaFromHeader(rep.header)
	if err != nil {
		return &ListResponse{Meta: meta}, err
	}
	var lr ListResponse
	if err := json.Unmarshal(rep.body, &lr); err != nil {
		return &ListResponse{Meta: meta}, fmt.Errorf("client: list %q from %s: %w: %w", prefix, rep.endpoint, ErrBadAnswer, err)
	}
	lr.Meta = meta.merge(lr.Meta)
	if lr.Items == nil {
		lr.Items = []KV{}
	}
	return &lr, nil
}

// Status returns the cluster as the first node that answers sees it.
func (cl *Client) Status(ctx context.Context) (*StatusResponse, error) {
	rep, err := cl.do(ctx, call{method: http.MethodGet, path: "/v1/status", read: true})
	if err != nil {
		return nil, err
	}
	return decodeStatus(rep)
}

// RemoveMember takes the member id out of the cluster (any node forwards it to the leader):
// out of the Raft configuration, and out of the members table, so that purging deleted keys no
// longer waits for it. A node removed while running stops itself; to bring the id back, wipe
// that node's data directory and start it with --join. Removing an unknown id is an error that
// satisfies IsNotFound.
//
// A removal may take a minute and a half (the member hands its uncommitted writes over, then
// two log changes), far longer than DefaultTimeout: call it on a Client whose Config.Timeout
// is longer (kvctl member remove uses 2 minutes). An attempt cut short returns an error for
// which IsOutcomeUnknown is true, while the leader carries the removal on.
func (cl *Client) RemoveMember(ctx context.Context, id string) error {
	if id == "" || strings.ContainsAny(id, "/?#") {
		return fmt.Errorf("%w: member id %q", ErrBadOptions, id)
	}
	_, err := cl.do(ctx, call{method: http.MethodDelete, path: "/v1/cluster/members/" + url.PathEscape(id)})
	return err
}

// RemovedAt asks the node at endpoint ("host:port" or a URL) whether member id was removed
// from the cluster, as its committed state has it: true on its 410 removed, false for a
// member or an unknown id. An error means no answer came.
func (cl *Client) RemovedAt(ctx context.Context, endpoint, id string) (bool, error) {
	base, err := endpointURL(endpoint)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, cl.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/cluster/members/"+url.PathEscape(id), nil)
	if err != nil {
		return false, err
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusGone, nil
}

// StatusOf asks one node, endpoint ("host:port" or a URL), for its view of the cluster, with no
// failover: for tools that need every node's own answer (kvctl cluster). The endpoint need not
// be one of the configured ones.
func (cl *Client) StatusOf(ctx context.Context, endpoint string) (*StatusResponse, error) {
	base, err := endpointURL(endpoint)
	if err != nil {
		return nil, err
	}
	one := &Client{endpoints: []string{base}, timeout: cl.timeout, http: cl.http, traced: cl.traced}
	rep, err := one.do(ctx, call{method: http.MethodGet, path: "/v1/status", read: true})
	if err != nil {
		return nil, err
	}
	return decodeStatus(rep)
}

func decodeStatus(rep *reply) (*StatusResponse, error) {
	var st StatusResponse
	if err := json.Unmarshal(rep.body, &st); err != nil {
		return nil, fmt.Errorf("client: status from %s: %w: %w", rep.endpoint, ErrBadAnswer, err)
	}
	return &st, nil
}

// keyPath is the escaped request path of key. The key is escaped as one path segment ("/"
// becomes %2F), so a key like "a//b" or "a/../b" reaches the server intact instead of being
// cleaned by its router; "." and ".." are spelled with %2E for the same reason.
func keyPath(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%w: empty key", ErrBadOptions)
	}
	seg := url.PathEscape(key)
	if key == "." || key == ".." {
		seg = strings.ReplaceAll(seg, ".", "%2E")
	}
	return "/v1/kv/" + seg, nil
}

// strongOnly refuses a condition at the eventual level, which no server takes: a condition needs
// the single order of writes only Raft gives. The level is read as servers read it
// (consistency.ParseWrite), as kvctl's own check does; one it does not know is left to the server.
func strongOnly(level string, conditional bool) error {
	if l, err := consistency.ParseWrite(level); conditional && err == nil && l == consistency.Eventual {
		return fmt.Errorf("%w: IfVersion and IfAbsent are strong only, not %s", ErrBadOptions, level)
	}
	return nil
}

func setLevel(q url.Values, level string) {
	if level != "" {
		q.Set("consistency", level)
	}
}

func setStaleness(q url.Values, d time.Duration) {
	if d > 0 {
		q.Set("max_staleness", d.String())
	}
}

// writeMeta is the metadata of a write's answer: headers, and the JSON body when the server sent
// one (it may answer an empty body; see docs/http-api.md).
func writeMeta(rep *reply) Meta {
	if rep == nil {
		return Meta{}
	}
	meta := metaFromHeader(rep.header)
	if rep.status >= 300 || !isJSON(rep.header) || len(rep.body) == 0 {
		return meta
	}
	var vr ValueResponse
	if err := json.Unmarshal(rep.body, &vr); err != nil {
		// The write is done and the headers said what it got; a garbled body is no reason to
		// report a successful write as failed.
		return meta
	}
	return withKV(meta.merge(vr.Meta), vr.KV)
}

// withKV fills the version and state from the value object when the metadata lacks them.
func withKV(m Meta, kv KV) Meta {
	if m.Version == "" {
		m.Version = kv.Version
	}
	if m.State == "" {
		m.State = kv.State
	}
	return m
}

func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
