package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

// listPage is one GET /v1/kv answer, decoded.
func listPage(t *testing.T, n *Node, query string, header ...string) (client.ListResponse, reply) {
	t.Helper()
	r := do(t, "GET", n, "/v1/kv?"+query, "", header...)
	var page client.ListResponse
	if r.status != 200 {
		t.Fatalf("GET /v1/kv?%s: %d %s", query, r.status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &page); err != nil {
		t.Fatalf("GET /v1/kv?%s: %v in %s", query, err, r.body)
	}
	return page, r
}

// A list longer than the node's page size comes in pages: each answer says more and carries the
// last key in next (next_base64 when it is not UTF-8), and sending that back as after (or
// after_base64) goes on strictly after it, within the prefix, at every read level, until an
// answer says no more. A caller's limit above the page size is cut to it.
func TestListPagesGoOnAfterTheLastKey(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, c *Config) { c.listPageKeys = 2 })
	n := tc.nodes[0]
	keys := []string{"p/a", "p/b", "p/c", "p/\xff\x01", "p/\xff\xfe"}
	for _, k := range append([]string{"o", "q", "p/gone"}, keys...) {
		if r := do(t, "PUT", n, "/v1/kv/"+url.PathEscape(k)+"?consistency=strong", "v"); r.status != 200 {
			t.Fatalf("put %q: %d %s", k, r.status, r.body)
		}
	}
	if r := do(t, "DELETE", n, "/v1/kv/p/gone", ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}

	for _, level := range []string{"strong", "bounded", "session", "eventual"} {
		t.Run(level, func(t *testing.T) {
			var got []string
			var nexts []string
			after, token := "", ""
			for pages := 1; ; pages++ {
				page, r := listPage(t, n, "prefix=p/&consistency="+level+after, client.HeaderSession, token)
				if level == "session" && r.header.Get(client.HeaderSession) == "" {
					t.Errorf("page %d: no session token", pages)
				}
				token = r.header.Get(client.HeaderSession)
				for _, it := range page.Items {
					k, err := it.RawKey()
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, k)
				}
				if !page.More {
					if page.Next != "" || page.NextBase64 != "" {
						t.Errorf("page %d: next %q/%q without more", pages, page.Next, page.NextBase64)
					}
					break
				}
				if pages == len(keys) {
					t.Fatalf("still more after %d pages: %+v", pages, got)
				}
				if len(page.Items) != 2 {
					t.Errorf("page %d holds %d keys, want the page size, 2", pages, len(page.Items))
				}
				next, err := page.NextKey()
				if err != nil || next != got[len(got)-1] {
					t.Fatalf("page %d: next %q (%v), want the last key %q", pages, next, err, got[len(got)-1])
				}
				// Send back the field the answer used, as a caller reading JSON would.
				if page.NextBase64 != "" {
					nexts = append(nexts, "next_base64")
					after = "&after_base64=" + url.QueryEscape(page.NextBase64)
				} else {
					nexts = append(nexts, "next")
					after = "&after=" + url.QueryEscape(page.Next)
				}
			}
			if !slices.Equal(got, keys) {
				t.Errorf("pages listed %+q, want %+q", got, keys)
			}
			if !slices.Equal(nexts, []string{"next", "next_base64"}) {
				t.Errorf("pages went on with %v, want next then next_base64 (p/\\xff\\x01 is not UTF-8)", nexts)
			}
		})
	}

	// A limit under the page size cuts there, with where to go on; one over it is cut to it.
	page, _ := listPage(t, n, "prefix=p/&limit=1")
	if len(page.Items) != 1 || !page.More || page.Next != "p/a" {
		t.Errorf("limit 1: %+v, want p/a with more and next p/a", page)
	}
	page, _ = listPage(t, n, "prefix=p/&limit=100&after=p/a")
	if len(page.Items) != 2 || page.Items[0].Key != "p/b" || !page.More || page.Next != "p/c" {
		t.Errorf("limit 100 after p/a: %+v, want p/b, p/c with more and next p/c", page)
	}
	// after beyond the prefix, or at its last key: nothing, and no more.
	for _, q := range []string{"prefix=p/&after=p0", "prefix=p/&after_base64=" + url.QueryEscape("cC///g==")} {
		if page, _ := listPage(t, n, q); len(page.Items) != 0 || page.More {
			t.Errorf("%s: %+v, want no items and no more", q, page)
		}
	}
}

// The byte budget cuts an answer too, before the value that would pass it; a value larger than
// the whole budget still comes, alone, so paging moves on.
func TestListPageByteBudget(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, c *Config) { c.listPageBytes = 100 })
	n := tc.nodes[0]
	for k, size := range map[string]int{"b/1": 40, "b/2": 40, "b/3": 300, "b/4": 10} {
		if r := do(t, "PUT", n, "/v1/kv/"+k, strings.Repeat("x", size)); r.status != 200 {
			t.Fatalf("put %s: %d %s", k, r.status, r.body)
		}
	}
	var pages [][]string
	after := ""
	for len(pages) < 5 {
		page, _ := listPage(t, n, "prefix=b/"+after)
		var ks []string
		for _, it := range page.Items {
			ks = append(ks, it.Key)
		}
		pages = append(pages, ks)
		if !page.More {
			break
		}
		after = "&after=" + url.QueryEscape(page.Next)
	}
	want := [][]string{{"b/1", "b/2"}, {"b/3"}, {"b/4"}}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages %q, want %q", pages, want)
	}
}

// Deleted keys waiting for purging count against the records one answer reads (maxListScan):
// a run of them longer than that ends the answer, even one with no key, with more and next (a
// deleted key) to go on from, rather than being read through whole for an answer of one key.
// Walking on from next lists every live key once.
func TestListPageStopsAfterItsShareOfDeletedKeys(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, c *Config) {
		c.listPageScan = 3
		c.PurgeInterval = time.Hour // the tombstones stay
	})
	n := tc.nodes[0]
	for _, k := range []string{"t/a", "t/d1", "t/d2", "t/d3", "t/d4", "t/d5", "t/z"} {
		if r := do(t, "PUT", n, "/v1/kv/"+k, "v"); r.status != 200 {
			t.Fatalf("put %s: %d %s", k, r.status, r.body)
		}
	}
	for _, k := range []string{"t/d1", "t/d2", "t/d3", "t/d4", "t/d5"} {
		if r := do(t, "DELETE", n, "/v1/kv/"+k, ""); r.status != 200 {
			t.Fatalf("delete %s: %d %s", k, r.status, r.body)
		}
	}
	type answer struct {
		keys []string
		more bool
		next string
	}
	var got []answer
	after := ""
	for len(got) < 10 {
		page, _ := listPage(t, n, "prefix=t/"+after)
		a := answer{more: page.More, next: page.Next}
		for _, it := range page.Items {
			a.keys = append(a.keys, it.Key)
		}
		got = append(got, a)
		if !page.More {
			break
		}
		after = "&after=" + url.QueryEscape(page.Next)
	}
	want := []answer{{[]string{"t/a"}, true, "t/d2"}, {nil, true, "t/d5"}, {[]string{"t/z"}, false, ""}}
	if !slices.EqualFunc(got, want, func(a, b answer) bool {
		return slices.Equal(a.keys, b.keys) && a.more == b.more && a.next == b.next
	}) {
		t.Errorf("answers %+v, want %+v (at most 3 records read each)", got, want)
	}
	// The Go client walks such answers too.
	cfg := client.DefaultConfig()
	cfg.Endpoints = []string{n.HTTPAddr()}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := cl.List(context.Background(), "t/", client.ListOptions{})
	if err != nil || len(items) != 2 || items[0].Key != "t/a" || items[1].Key != "t/z" {
		t.Errorf("client List: %+v, %v; want t/a, t/z", items, err)
	}
}

func TestListBadContinuation(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	for _, q := range []string{"after=a&after_base64=YQ==", "after_base64=!!!", "after_base64=a+b"} {
		if r := do(t, "GET", n, "/v1/kv?"+q, ""); r.status != 400 || errCode(t, r) != client.CodeBadRequest {
			t.Errorf("GET /v1/kv?%s: %d %s, want 400 bad_request", q, r.status, r.body)
		}
	}
}

// Without a test override, an answer holds at most maxListKeys keys and maxListBytes bytes,
// whatever limit the caller asks for.
func TestListRangeCapsAtThePageSize(t *testing.T) {
	n := &Node{}
	for _, tt := range []struct {
		query string
		limit int
	}{
		{"", maxListKeys},
		{"limit=0", maxListKeys},
		{"limit=7", 7},
		{"limit=1000000", maxListKeys},
	} {
		lr, err := n.parseListRange(query(tt.query))
		if err != nil || lr.Limit != tt.limit || lr.MaxBytes != maxListBytes {
			t.Errorf("%q: limit %d, max bytes %d, %v; want %d, %d", tt.query, lr.Limit, lr.MaxBytes, err, tt.limit, maxListBytes)
		}
	}
}

// A session list shows the session's own writes in its range although lists read the committed
// layer only: the node has the session's uncommitted writes of the range committed first, and
// leaves those outside the range alone. Here no committer runs, so nothing else commits them.
func TestSessionListShowsItsOwnUncommittedWrites(t *testing.T) {
	tc := startCluster(t, 3, func(_ int, c *Config) { c.disableCommitter = true })
	leader, f := tc.leaderAndFollower()
	if w := do(t, "PUT", leader, "/v1/kv/own/gone?consistency=strong", "old"); w.status != 200 {
		t.Fatalf("strong put: %d %s", w.status, w.body)
	}
	token := ""
	for _, req := range []struct{ method, path, body string }{
		{"PUT", "/v1/kv/own/a?consistency=eventual", "a"},
		{"PUT", "/v1/kv/own/b?consistency=eventual", "b"},
		{"DELETE", "/v1/kv/own/gone?consistency=eventual", ""},
		{"PUT", "/v1/kv/else/x?consistency=eventual", "x"},
	} {
		w := do(t, req.method, f, req.path, req.body, client.HeaderSession, token)
		if w.status != 200 {
			t.Fatalf("%s %s on %s: %d %s", req.method, req.path, f.cfg.ID, w.status, w.body)
		}
		token = w.header.Get(client.HeaderSession)
	}
	for _, n := range []*Node{f, leader} {
		page, r := listPage(t, n, "consistency=session&prefix=own/", client.HeaderSession, token)
		var keys []string
		for _, it := range page.Items {
			keys = append(keys, it.Key)
		}
		if !slices.Equal(keys, []string{"own/a", "own/b"}) {
			t.Errorf("session list of own/ on %s: %v, want the session's own/a and own/b, and not own/gone, which it deleted", n.cfg.ID, keys)
		}
		token = r.header.Get(client.HeaderSession)
	}
	if _, ok, err := f.store.Tentative("else/x"); err != nil || !ok {
		t.Errorf("else/x, outside the list's range, left %s's tentative layer (ok %v, err %v): the list committed more than it needed", f.cfg.ID, ok, err)
	}
	if page, _ := listPage(t, f, "consistency=eventual&prefix=else/"); len(page.Items) != 0 {
		t.Errorf("an eventual list shows committed data only, but listed %v", page.Items)
	}
}

// TestSessionListCommitsLargeOwnWritesInParts: the session's own uncommitted writes that a
// session list commits first may add up to far more than one committer batch carries (a token
// names up to 64 keys, of values up to --max-value-size each). The list commits them in batches
// of at most maxCommitBytes, as the committer would, not as one entry of up to 64 MiB (or, past
// the leader's 256 MiB body limit, not at all).
//
// The bound is scaled down from 4 MiB to 64 KiB, and the values with it: 10 MiB of writes took
// 20 to 35 s with -race and, on a loaded machine, cost the leader its lease (even with kvd's
// timings) and the list its commit.
func TestSessionListCommitsLargeOwnWritesInParts(t *testing.T) {
	const commitBytes = 64 << 10
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.disableCommitter = true
		c.commitBytes = commitBytes
		kvdRaftTimings(i, c) // a test of batching, not of elections
	})
	leader, f := tc.leaderAndFollower()
	value := strings.Repeat("v", commitBytes/4)
	const writes = 5 // 80 KiB: two batches of at most commitBytes
	for _, n := range []*Node{f, leader} {
		token := ""
		var want []string
		for i := range writes {
			key := fmt.Sprintf("big-%s/%d", n.cfg.ID, i)
			w := do(t, "PUT", n, "/v1/kv/"+key+"?consistency=eventual", value, client.HeaderSession, token)
			if w.status != 200 {
				t.Fatalf("eventual put %s on %s: %d %s", key, n.cfg.ID, w.status, w.body)
			}
			token = w.header.Get(client.HeaderSession)
			want = append(want, key)
		}
		before := leader.raft.AppliedIndex()
		var keys []string
		for after, more := "", true; more; {
			page, r := listPage(t, n, "consistency=session&prefix=big-"+n.cfg.ID+"/&after="+url.QueryEscape(after), client.HeaderSession, token)
			for _, it := range page.Items {
				keys = append(keys, it.Key)
			}
			token, after, more = r.header.Get(client.HeaderSession), page.Next, page.More
		}
		if !slices.Equal(keys, want) {
			t.Errorf("session list on %s: %v, want the session's own %v", n.cfg.ID, keys, want)
		}
		if entries := leader.raft.AppliedIndex() - before; entries < 2 {
			t.Errorf("the session list on %s committed its %d KiB of writes in %d log entries, want batches of at most %d KiB", n.cfg.ID, writes*len(value)>>10, entries, commitBytes>>10)
		}
	}
}
