package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pagingNode serves GET /v1/kv over keys as docs/http-api.md says a node does: at most pageSize
// keys an answer, more and next (next_base64 for keys that are not UTF-8) when keys are left,
// after or after_base64 to go on. It records each request's query and session token, and
// answers each with a new token.
type pagingNode struct {
	keys     []string // sorted
	pageSize int

	mu       sync.Mutex
	queries  []string
	sessions []string
}

func (p *pagingNode) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	p.queries = append(p.queries, r.URL.RawQuery)
	p.sessions = append(p.sessions, r.Header.Get(HeaderSession))
	w.Header().Set(HeaderSession, "tok-"+strconv.Itoa(len(p.sessions)))
	p.mu.Unlock()
	after := q.Get("after")
	if q.Has("after_base64") {
		b, _ := base64.StdEncoding.DecodeString(q.Get("after_base64"))
		after = string(b)
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit == 0 || limit > p.pageSize {
		limit = p.pageSize
	}
	resp := ListResponse{Items: []KV{}, Meta: Meta{Node: "n1"}}
	lastKey := ""
	for _, k := range p.keys {
		if k <= after || !strings.HasPrefix(k, q.Get("prefix")) {
			continue
		}
		if len(resp.Items) == limit {
			resp.More = true
			last := NewKV(lastKey, nil)
			resp.Next, resp.NextBase64 = last.Key, last.KeyBase64
			break
		}
		kv := NewKV(k, []byte("v"))
		kv.Version = "1.0@n1"
		resp.Items = append(resp.Items, kv)
		lastKey = k
	}
	writeJSON(w, 200, resp)
}

func keysOf(t *testing.T, items []KV) []string {
	t.Helper()
	var keys []string
	for _, it := range items {
		k, err := it.RawKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// List and ListPages go on from each answer's next key until no key is left, also past keys
// that are not UTF-8 (next_base64), one page in memory at a time for ListPages; a Limit is the
// total over all pages, and a session is carried from page to page.
func TestListPagesFollowNext(t *testing.T) {
	keys := []string{"k/a", "k/b", "k/c", "k/\xff\x01", "k/\xff\xfe", "l"}
	p := &pagingNode{keys: keys, pageSize: 2}
	node := newFakeNode(t, p.serve)
	cl := mustClient(t, time.Second, node.addr())
	ctx := context.Background()

	items, meta, err := cl.List(ctx, "k/", ListOptions{})
	if err != nil || !slices.Equal(keysOf(t, items), keys[:5]) || meta.Node != "n1" {
		t.Fatalf("List = %+q, %+v, %v; want %+q", keysOf(t, items), meta, err, keys[:5])
	}
	if want := []string{"prefix=k%2F", "after=k%2Fb&prefix=k%2F", "after=k%2F%FF%01&prefix=k%2F"}; !slices.Equal(p.queries, want) {
		t.Errorf("List asked %q, want %q", p.queries, want)
	}

	var pages [][]string
	var last *ListResponse
	sess := NewSession("")
	p.queries, p.sessions = nil, nil
	_, err = cl.ListPages(ctx, "k/", ListOptions{Limit: 3, After: "k/a", Session: sess}, func(page *ListResponse) error {
		pages, last = append(pages, keysOf(t, page.Items)), page
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"k/b", "k/c"}, {"k/\xff\x01"}}; !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("ListPages limit 3 after k/a: pages %+q, want %+q", pages, want)
	}
	if next, err := last.NextKey(); !last.More || next != "k/\xff\x01" || err != nil || last.NextBase64 == "" {
		t.Errorf("the last page: more %v, next %q (%v); want more, next_base64 of k/\\xff\\x01", last.More, next, err)
	}
	if want := []string{"after=k%2Fa&limit=3&prefix=k%2F", "after=k%2Fc&limit=1&prefix=k%2F"}; !slices.Equal(p.queries, want) {
		t.Errorf("ListPages asked %q, want %q", p.queries, want)
	}
	if want := []string{"", "tok-1"}; !slices.Equal(p.sessions, want) || sess.Token() != "tok-2" {
		t.Errorf("sessions sent %q, kept %q; want %q, then tok-2", p.sessions, sess.Token(), want)
	}

	// fn's error stops the walk and comes back.
	stop := fmt.Errorf("enough")
	calls := 0
	if _, err := cl.ListPages(ctx, "", ListOptions{}, func(*ListResponse) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("ListPages with fn failing: %v after %d calls, want its error after 1", err, calls)
	}
}

// A server that ignores after (older than paging) would give the first page for ever: the
// client stops with an error instead.
func TestListPagesStopWhenTheServerIgnoresAfter(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, ListResponse{Items: []KV{{Key: "a"}}, More: true, Next: "a"})
	})
	cl := mustClient(t, time.Second, node.addr())
	if _, _, err := cl.List(context.Background(), "", ListOptions{}); err == nil || !strings.Contains(err.Error(), "ignores after") {
		t.Errorf("List = %v, want an error that the server ignores after", err)
	}
	if node.hits.Load() != 2 {
		t.Errorf("%d requests, want 2", node.hits.Load())
	}
}

// A node older than paging ignores after and lists from the start again; when the first page
// came from a newer node, its keys would be listed twice. The client stops instead.
func TestListPagesStopWhenAPageStartsBeforeAfter(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("after") == "" {
			writeJSON(w, 200, ListResponse{Items: []KV{{Key: "a"}, {Key: "b"}}, More: true, Next: "b"})
			return
		}
		writeJSON(w, 200, ListResponse{Items: []KV{{Key: "a"}, {Key: "b"}, {Key: "c"}}}) // after ignored
	})
	cl := mustClient(t, time.Second, node.addr())
	items, _, err := cl.List(context.Background(), "", ListOptions{})
	if err == nil || !strings.Contains(err.Error(), "ignores after") {
		t.Errorf("List = %d items, %v; want an error that the node ignores after", len(items), err)
	}
}
