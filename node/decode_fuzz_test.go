package node

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// Decoders of what clients and peers send a node: a session token (Dialkv-Session, any client),
// a list's range (after, after_base64, limit) and the Dialkv-Session-Seen header of forwarded
// writes. Each must refuse what it cannot read without panicking. Only the seeds run in a plain
// `go test`; to search:
//
//	go test -tags hashicorpmetrics -run XXX -fuzz FuzzParseSession -fuzztime 60s ./node/

func FuzzParseSession(f *testing.F) {
	v := consistency.Version{Wall: 1732298000123456789, Logical: 3, Node: "n1"}
	long := strings.Repeat("k", maxTokenKey+1)
	t := sessionToken{index: 42, floor: consistency.Version{Wall: 7, Node: "n2/s"}}.saw("a", v).saw(long, v)
	for _, s := range []string{"", t.String(), "3.0", "2.5", "3.18446744073709551615", "3.1.AA", "4.1", "3.1.2.3"} {
		f.Add(s)
	}
	// An older node's token: entries by hash only.
	raw := append(make([]byte, 8), replication.AppendVersion(nil, v)...)
	f.Add("2.9." + base64.RawURLEncoding.EncodeToString(raw))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseSession(s)
		if err != nil {
			return
		}
		if len(tok.seen) > maxSessionEntries {
			t.Fatalf("%q parsed to %d entries", s, len(tok.seen))
		}
		again, err := parseSession(tok.String())
		if err != nil || !sameToken(tok, again) {
			t.Fatalf("%q parsed to %+v, which renders as %q and parses to %+v, %v", s, tok, tok.String(), again, err)
		}
	})
}

func FuzzParseListRange(f *testing.F) {
	for _, s := range []string{"", "prefix=a&limit=5", "after=x", "after_base64=AP8%3D", "after_base64=%2B%2F", "after=a&after_base64=YQ==", "limit=-1", "limit=99999999999999999999", "after_base64=="} {
		f.Add(s)
	}
	n := &Node{}
	f.Fuzz(func(t *testing.T, raw string) {
		q := query(raw)
		lr, err := n.parseListRange(q)
		if err != nil {
			return
		}
		if lr.Limit < 1 || lr.Limit > maxListKeys {
			t.Fatalf("%q: limit %d, want 1 to %d", raw, lr.Limit, maxListKeys)
		}
		if q.Has("after_base64") {
			if b, err := base64.StdEncoding.DecodeString(q.Get("after_base64")); err != nil || string(b) != lr.After {
				t.Fatalf("%q: after %q, want the decoded after_base64", raw, lr.After)
			}
		} else if lr.After != q.Get("after") {
			t.Fatalf("%q: after %q, want %q", raw, lr.After, q.Get("after"))
		}
	})
}

func FuzzDecodeSessionSeen(f *testing.F) {
	vs := []consistency.Version{{}, {Wall: 5, Node: "n1"}}
	f.Add(encodeSessionSeen(vs), 2)
	f.Add("", 3)
	f.Add("AAAA", 1<<20)
	f.Add("\r", 0) // base64 skips line breaks: no versions, for a batch of none
	f.Fuzz(func(t *testing.T, s string, count int) {
		if count < 0 || count > forwardBatch {
			return // the count is the length of a batch decoded already
		}
		got, err := decodeSessionSeen(s, count)
		if err != nil || got == nil {
			return
		}
		if len(got) != count {
			t.Fatalf("%d versions for a batch of %d", len(got), count)
		}
		if again, err := decodeSessionSeen(encodeSessionSeen(got), count); err != nil || len(again) != len(got) || len(got) > 0 && !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip: %v: %+v, want %+v", err, again, got)
		}
	})
}

func sameToken(a, b sessionToken) bool {
	return a.index == b.index && a.floor == b.floor && len(a.seen) == len(b.seen) && (len(a.seen) == 0 || reflect.DeepEqual(a.seen, b.seen))
}
