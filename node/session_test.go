package node

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

func TestSessionTokenRoundTripAndBounds(t *testing.T) {
	var tok sessionToken
	if tok.String() != "" {
		t.Fatalf("empty token renders %q", tok.String())
	}
	tok = tok.advance(7).saw("a", consistency.Version{Wall: 5, Node: "n1"})
	tok = tok.saw("a", consistency.Version{Wall: 3, Node: "n2"}) // older: keeps the newer
	tok = tok.advance(4)                                         // lower index: keeps 7
	got, err := parseSession(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.index != 7 || got.versionOf("a") != (consistency.Version{Wall: 5, Node: "n1"}) || !got.versionOf("b").IsZero() {
		t.Fatalf("round trip of %q = %+v", tok.String(), got)
	}
	for i := 0; i < 3*maxSessionEntries; i++ {
		tok = tok.saw(fmt.Sprintf("k%d", i), consistency.Version{Wall: int64(i + 10), Node: "n1"})
	}
	tok = tok.capped()
	newestKey := fmt.Sprintf("k%d", 3*maxSessionEntries-1)
	if len(tok.seen) != maxSessionEntries || tok.versionOf(newestKey).IsZero() || !tok.versionOf("a").IsZero() {
		t.Errorf("token keeps %d keys (want %d, the newest)", len(tok.seen), maxSessionEntries)
	}
	// The dropped entries still count for the session's next write.
	if got, want := tok.newest(), (consistency.Version{Wall: int64(3*maxSessionEntries + 9), Node: "n1"}); got != want {
		t.Errorf("newest = %v, want %v", got, want)
	}
	if len(tok.String()) > 8<<10 {
		t.Errorf("token is %d bytes: too big for a header", len(tok.String()))
	}
	// Keys travel with their entries (up to maxTokenKey bytes), and the floor survives.
	long := strings.Repeat("x", maxTokenKey+1)
	tok = sessionToken{index: 3, floor: consistency.Version{Wall: 2, Node: "n3"}}.saw("short", consistency.Version{Wall: 9, Node: "n2"}).saw(long, consistency.Version{Wall: 8, Node: "n1"})
	got, err = parseSession(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.seen) != 2 || got.seen[0].key != "short" || got.seen[1].key != "" || got.versionOf(long) != (consistency.Version{Wall: 8, Node: "n1"}) || got.floor != tok.floor || got.index != 3 {
		t.Errorf("round trip of %q = %+v", tok.String(), got)
	}
	// A token from an older node (entries by hash only) is still read.
	oldTok, err := parseSession("2.7." + base64.RawURLEncoding.EncodeToString(replication.AppendVersion(binary.BigEndian.AppendUint64(nil, keyHash("a")), consistency.Version{Wall: 5, Node: "n1"})))
	if err != nil || oldTok.index != 7 || oldTok.versionOf("a") != (consistency.Version{Wall: 5, Node: "n1"}) || oldTok.seen[0].key != "" {
		t.Errorf("format 2 token: %+v, %v", oldTok, err)
	}
	forged := sessionToken{index: 1}.saw("a", consistency.Version{Wall: 1, Node: "n1"})
	forged.seen[0].key = "b" // a key that does not match its hash
	for _, bad := range []string{"1.5", "2", "2.x", "2.5.!!", "2.5.AAAA", "3.5.AAAA", forged.String()} {
		if _, err := parseSession(bad); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("parseSession(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

// keyHash is computed in place; it must stay the FNV-1a hash tokens already in clients' hands
// were made with.
func TestKeyHashIsFNV1a(t *testing.T) {
	for _, key := range []string{"", "k", "user/42", "ключ", strings.Repeat("x", 300)} {
		h := fnv.New64a()
		h.Write([]byte(key))
		if got, want := keyHash(key), h.Sum64(); got != want {
			t.Errorf("keyHash(%q) = %x, want %x", key, got, want)
		}
	}
}

// A session's writes are ordered as the session made them even when its first write was
// stamped by a node whose clock runs ahead and the next goes to a node that has not heard of
// it: that node's clock observes the session token before stamping (the leader's, for a strong
// write, through the forwarded stamp), so last-writer-wins keeps the session's newer write.
func TestSessionWritesStayOrderedAcrossSkewedClocks(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.TestFaults = true })
	leader, ahead := tc.leaderAndFollower()
	other := tc.otherThan(leader, ahead)
	// ahead runs 3 s fast and hears nobody, so no gossip moves the others' clocks past its writes.
	if r := do(t, "PUT", ahead, "/v1/test/faults", fmt.Sprintf(`{"clock_offset":"3s","drop_in":["%s","%s"],"drop_out":["%s","%s"]}`,
		leader.cfg.ID, other.cfg.ID, leader.cfg.ID, other.cfg.ID)); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", ahead.cfg.ID, r.status, r.body)
	}
	for _, n := range []*Node{leader, other} {
		if r := do(t, "PUT", n, "/v1/test/faults", fmt.Sprintf(`{"drop_in":["%s"],"drop_out":["%s"]}`, ahead.cfg.ID, ahead.cfg.ID)); r.status != 200 {
			t.Fatalf("faults on %s: %d %s", n.cfg.ID, r.status, r.body)
		}
	}
	version := func(r reply) consistency.Version {
		t.Helper()
		v, err := consistency.ParseVersion(r.header.Get(client.HeaderVersion))
		if err != nil {
			t.Fatalf("answer without a version: %d %s (%v)", r.status, r.body, err)
		}
		return v
	}
	cases := []struct {
		key, level string
		second     *Node
	}{
		{"ev", "eventual", other}, // stamped by other itself
		{"fw", "strong", other},   // forwarded: stamped by the leader after other's stamp
		{"ld", "strong", leader},  // stamped by the leader
	}
	for _, c := range cases {
		first := do(t, "PUT", ahead, "/v1/kv/"+c.key+"?consistency=eventual", "first")
		if first.status != 200 {
			t.Fatalf("%s: first write on %s: %d %s", c.key, ahead.cfg.ID, first.status, first.body)
		}
		second := do(t, "PUT", c.second, "/v1/kv/"+c.key+"?consistency="+c.level, "second", client.HeaderSession, first.header.Get(client.HeaderSession))
		if second.status != 200 {
			t.Fatalf("%s: second (%s) write on %s: %d %s", c.key, c.level, c.second.cfg.ID, second.status, second.body)
		}
		if v1, v2 := version(first), version(second); !v2.Newer(v1) {
			t.Errorf("%s: the session's second write (%s, on %s) got version %v, not newer than its first %v (on the node 3 s ahead)", c.key, c.level, c.second.cfg.ID, v2, v1)
		}
	}
	for _, n := range tc.nodes {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d", n.cfg.ID, r.status)
		}
	}
	// Once the first writes are committed too, every node keeps the second ones.
	waitUntil(t, "every node to hold the session's second writes", 20*time.Second, func() bool {
		for _, n := range tc.nodes {
			for _, c := range cases {
				r := do(t, "GET", n, "/v1/kv/"+c.key+"?consistency=strong", "")
				if r.body != "second" {
					return false
				}
			}
			if r := do(t, "GET", n, "/v1/status", ""); !strings.Contains(r.body, `"backlog": 0`) {
				return false
			}
		}
		return true
	})
}

// A session token moves a node's clock at most sessionClockLead ahead of its wall clock. A node
// whose clock is further behind the one that stamped the session's version of a key could only
// stamp the session's next write of the key below that version, and acknowledged it: the
// session's next read returned its older write, and last-writer-wins dropped the newer one for
// good. Whoever stamps such a write refuses it (503 unavailable, naming the clock skew, so the
// client tries another node): the node taking an eventual write, the leader taking a strong
// one, and the leader a follower forwarded one to, even when the follower's own clock is not
// behind (the leader stamps the write). Once the session's version has reached the node, the
// retried write is taken, after it.
func TestSessionWriteStampedBelowItsTokenIsRefused(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.TestFaults = true })
	leader, ahead := tc.leaderAndFollower()
	other := tc.otherThan(leader, ahead)
	skew := 3 * sessionClockLead
	setFaults := func(n *Node, faults string) {
		t.Helper()
		if r := do(t, "PUT", n, "/v1/test/faults", faults); r.status != 200 {
			t.Fatalf("faults on %s: %d %s", n.cfg.ID, r.status, r.body)
		}
	}
	// ahead runs far beyond the bound and hears nobody, so no gossip moves the others' clocks
	// past its writes: only the session token tells them.
	setFaults(ahead, fmt.Sprintf(`{"clock_offset":"%s","drop_in":["%s","%s"],"drop_out":["%s","%s"]}`,
		skew, leader.cfg.ID, other.cfg.ID, leader.cfg.ID, other.cfg.ID))
	cutOff := fmt.Sprintf(`"drop_in":["%s"],"drop_out":["%s"]`, ahead.cfg.ID, ahead.cfg.ID)
	for _, n := range []*Node{leader, other} {
		setFaults(n, "{"+cutOff+"}")
	}
	version := func(r reply) consistency.Version {
		t.Helper()
		v, err := consistency.ParseVersion(r.header.Get(client.HeaderVersion))
		if err != nil || v.IsZero() {
			t.Fatalf("answer without a version: %d %s (%v)", r.status, r.body, err)
		}
		return v
	}
	cases := []struct {
		key, level string
		second     *Node
		fastSecond bool // the second node's clock runs as far ahead as ahead's (only the leader's lags)
	}{
		{"ev", "eventual", other, false}, // stamped by other itself
		{"ld", "strong", leader, false},  // stamped by the leader
		{"fw", "strong", other, false},   // forwarded: stamped by the leader
		{"ff", "strong", other, true},    // forwarded by a follower whose own stamp is newer
	}
	tokens := map[string]string{}
	firsts := map[string]consistency.Version{}
	for _, c := range cases {
		if c.fastSecond {
			setFaults(c.second, fmt.Sprintf(`{"clock_offset":"%s",%s}`, skew, cutOff))
		}
		first := do(t, "PUT", ahead, "/v1/kv/"+c.key+"?consistency=eventual", "first")
		if first.status != 200 {
			t.Fatalf("%s: first write on %s: %d %s", c.key, ahead.cfg.ID, first.status, first.body)
		}
		tokens[c.key], firsts[c.key] = first.header.Get(client.HeaderSession), version(first)
		second := do(t, "PUT", c.second, "/v1/kv/"+c.key+"?consistency="+c.level, "second", client.HeaderSession, tokens[c.key])
		switch {
		case second.status == 200:
			t.Errorf("%s: the session's second (%s) write on %s was acknowledged with version %v, below its first %v (stamped %v ahead): its next read returns the first",
				c.key, c.level, c.second.cfg.ID, version(second), firsts[c.key], skew)
		case second.status != http.StatusServiceUnavailable || errCode(t, second) != client.CodeUnavailable || !strings.Contains(second.body, "clock"):
			t.Errorf("%s: the session's second (%s) write on %s: %d %s, want 503 unavailable naming the clock skew", c.key, c.level, c.second.cfg.ID, second.status, second.body)
		}
		if c.fastSecond {
			setFaults(c.second, "{"+cutOff+"}")
		}
	}
	for _, n := range tc.nodes {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d", n.cfg.ID, r.status)
		}
	}
	// Healed, the first writes reach every node, and the retried writes are stamped after them.
	for _, c := range cases {
		var second reply
		waitUntil(t, c.key+": the retried second write to be taken", 20*time.Second, func() bool {
			second = do(t, "PUT", c.second, "/v1/kv/"+c.key+"?consistency="+c.level, "second", client.HeaderSession, tokens[c.key])
			return second.status == 200
		})
		if v := version(second); !v.Newer(firsts[c.key]) {
			t.Errorf("%s: the retried second write got %v, not newer than the first %v", c.key, v, firsts[c.key])
		}
		tokens[c.key] = second.header.Get(client.HeaderSession)
	}
	waitUntil(t, "every node to hold the session's second writes", 20*time.Second, func() bool {
		for _, n := range tc.nodes {
			for _, c := range cases {
				if r := do(t, "GET", n, "/v1/kv/"+c.key+"?consistency=strong", ""); r.body != "second" {
					return false
				}
			}
		}
		return true
	})
	for _, n := range tc.nodes {
		for _, c := range cases {
			if r := do(t, "GET", n, "/v1/kv/"+c.key+"?consistency=session", "", client.HeaderSession, tokens[c.key]); r.status != 200 || r.body != "second" {
				t.Errorf("%s: session read on %s: %d %q, want the session's second write", c.key, n.cfg.ID, r.status, r.body)
			}
		}
	}
}

// A node that cannot catch up with a session's token in time forwards the read (DESIGN.md:
// "waits briefly, else forwards"): to the node that stamped the session's version of the key,
// or to the leader for the session's log index. A forwarded read that cannot be served either
// is refused, not forwarded again.
func TestSessionReadForwardsWhenBehind(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		// deaf's own anti-entropy rounds would pull the writes it must not have.
		c.Gossip.AntiEntropyInterval = time.Hour
	})
	leader, deaf := tc.leaderAndFollower()
	other := tc.otherThan(leader, deaf)
	// deaf hears nothing (no gossip, no log), but its own requests still get answers.
	if r := do(t, "PUT", deaf, "/v1/test/faults", fmt.Sprintf(`{"drop_in":["%s","%s"]}`, leader.cfg.ID, other.cfg.ID)); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", deaf.cfg.ID, r.status, r.body)
	}
	// A list at the session level needs only the index. deaf soon stops hearing the leader's
	// heartbeats too; then it asks a member gossip still has alive (first, while it does).
	w := do(t, "PUT", leader, "/v1/kv/fw-list", "x")
	r := do(t, "GET", deaf, "/v1/kv/?consistency=session&prefix=fw-list", "", client.HeaderSession, w.header.Get(client.HeaderSession), "Accept", "application/json")
	if r.status != 200 || !strings.Contains(r.body, `"fw-list"`) || r.header.Get(client.HeaderVia) != deaf.cfg.ID || !strings.Contains(r.body, `"via":"`+deaf.cfg.ID+`"`) {
		t.Fatalf("session list on %s: %d %s (via %q)", deaf.cfg.ID, r.status, r.body, r.header.Get(client.HeaderVia))
	}
	cases := []struct {
		name, level string
		writer      *Node
		servedBy    *Node
	}{
		{"eventual", "eventual", other, other}, // the write's origin holds it (a raw value that looks like an answer: relayed as it is)
		{"strong", "strong", leader, leader},   // the leader has applied the session's index
	}
	for _, c := range cases {
		value := "v-" + c.name
		if c.name == "eventual" {
			value = `{"meta": {"x": 1}, "a": "<b"}`
		}
		w := do(t, "PUT", c.writer, "/v1/kv/fw-"+c.name+"?consistency="+c.level, value)
		if w.status != 200 {
			t.Fatalf("%s write on %s: %d %s", c.name, c.writer.cfg.ID, w.status, w.body)
		}
		token := w.header.Get(client.HeaderSession)
		r := do(t, "GET", deaf, "/v1/kv/fw-"+c.name+"?consistency=session", "", client.HeaderSession, token)
		if r.status != 200 || r.body != value {
			t.Fatalf("%s: session read on %s, which cannot catch up: %d %q, want the value forwarded", c.name, deaf.cfg.ID, r.status, r.body)
		}
		if node, via := r.header.Get(client.HeaderNode), r.header.Get(client.HeaderVia); node != c.servedBy.cfg.ID || via != deaf.cfg.ID {
			t.Errorf("%s: served by %q via %q, want %s via %s", c.name, node, via, c.servedBy.cfg.ID, deaf.cfg.ID)
		}
		if r.header.Get(client.HeaderSession) == "" {
			t.Errorf("%s: the forwarded answer carries no session token", c.name)
		}
	}
	// Already forwarded once: refused with the reason, so the client tries another node.
	w = do(t, "PUT", leader, "/v1/kv/fw-once", "x")
	r = do(t, "GET", deaf, "/v1/kv/fw-once?consistency=session", "", client.HeaderSession, w.header.Get(client.HeaderSession), client.HeaderForwarded, other.cfg.ID)
	if r.status != 503 || errCode(t, r) != client.CodeUnavailable {
		t.Fatalf("a forwarded session read that cannot be served: %d %s, want 503 unavailable", r.status, r.body)
	}
}

// otherThan returns a node of the cluster that is neither a nor b.
func (tc *testCluster) otherThan(a, b *Node) *Node {
	for _, n := range tc.nodes {
		if n != a && n != b {
			return n
		}
	}
	tc.t.Fatalf("no third node in a cluster of %d", len(tc.nodes))
	return nil
}

// A session that deleted a key, or read the delete, keeps working once the tombstone is purged:
// the key is gone everywhere, and no node would ever hold the version the token records. A node
// that stamped the delete (the leader here) answers 404 once it has applied the purge, and the
// others forward to it (before, every node waited for the tombstone and answered 503).
func TestSessionReadAfterItsDeleteWasPurged(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.PurgeInterval = 100 * time.Millisecond })
	leader, follower := tc.leaderAndFollower()
	// A key too long for the token to carry: its entry stays after the delete is committed, and
	// only the origin can tell the purged delete from a write not yet received.
	long := "purged-" + strings.Repeat("x", maxTokenKey)
	w := do(t, "PUT", leader, "/v1/kv/"+long, "v")
	if w.status != 200 {
		t.Fatalf("put: %d %s", w.status, w.body)
	}
	del := do(t, "DELETE", leader, "/v1/kv/"+long, "", client.HeaderSession, w.header.Get(client.HeaderSession))
	if del.status != 200 {
		t.Fatalf("delete: %d %s", del.status, del.body)
	}
	token := del.header.Get(client.HeaderSession)
	tomb, err := consistency.ParseVersion(del.header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}
	// A short key deleted eventually on a follower: its entry stays until a node finds the
	// tombstone committed, or, once it is purged, the key gone under a newer purge horizon.
	ev := do(t, "DELETE", follower, "/v1/kv/purged-short?consistency=eventual", "")
	if ev.status != 200 {
		t.Fatalf("eventual delete: %d %s", ev.status, ev.body)
	}
	evToken := ev.header.Get(client.HeaderSession)
	if tok, err := parseSession(evToken); err != nil || len(tok.seen) != 1 || tok.seen[0].key != "purged-short" {
		t.Fatalf("the eventual delete's token %q: %+v, %v; want its entry, with the key", evToken, tok, err)
	}
	evTomb, err := consistency.ParseVersion(ev.header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the tombstones to be purged on every node", 20*time.Second, func() bool {
		for _, n := range tc.nodes {
			h, err := n.store.PurgeHorizon()
			_, ok, gerr := n.store.Get(long)
			_, ok2, gerr2 := n.store.Get("purged-short")
			if err != nil || gerr != nil || gerr2 != nil || ok || ok2 || tomb.Newer(h) || evTomb.Newer(h) {
				return false
			}
		}
		return true
	})
	// Past shedAfterEntries entries the answering node sheds the purged key's entry: absent,
	// under a newer purge horizon. Fillers the cluster never committed stay.
	crowded, err := parseSession(evToken)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < shedAfterEntries; i++ {
		crowded = crowded.saw(fmt.Sprintf("filler-%d", i), consistency.Version{Wall: time.Now().Add(time.Minute).UnixNano(), Node: "n9"})
	}
	for _, n := range tc.nodes {
		r := do(t, "GET", n, "/v1/kv/"+long+"?consistency=session", "", client.HeaderSession, token)
		if r.status != 404 || errCode(t, r) != client.CodeNotFound {
			t.Errorf("%s: session read of its purged delete: %d %s, want 404", n.cfg.ID, r.status, r.body)
		}
		r = do(t, "GET", n, "/v1/kv/purged-short?consistency=session", "", client.HeaderSession, crowded.String())
		if r.status != 404 || errCode(t, r) != client.CodeNotFound {
			t.Errorf("%s: session read of its purged eventual delete: %d %s, want 404", n.cfg.ID, r.status, r.body)
		}
		if tok, err := parseSession(r.header.Get(client.HeaderSession)); err != nil || len(tok.seen) != shedAfterEntries || !tok.versionOf("purged-short").IsZero() || tok.floor != evTomb {
			t.Errorf("%s: the answer's token %q still holds the purged key's entry (%+v, %v)", n.cfg.ID, r.header.Get(client.HeaderSession), tok, err)
		}
	}
}

// Only the node that stamped a version may take the key's absence below the purge horizon for a
// purged delete: elsewhere the session's write may have been superseded by a newer write not
// received yet (and dropped from every tentative layer before any commit), which a purge does
// not wait for.
func TestOnlyTheOriginTakesAbsenceForAPurgedDelete(t *testing.T) {
	tc := startCluster(t, 1, func(i int, c *Config) { c.PurgeInterval = 100 * time.Millisecond })
	n := tc.nodes[0]
	do(t, "PUT", n, "/v1/kv/gone", "v")
	do(t, "DELETE", n, "/v1/kv/gone", "")
	var h consistency.Version
	waitUntil(t, "a purge", 20*time.Second, func() bool {
		h, _ = n.store.PurgeHorizon()
		return !h.IsZero()
	})
	below := consistency.Version{Wall: h.Wall - 1}
	for _, c := range []struct {
		origin string
		want   bool
	}{{n.cfg.ID, true}, {"n9", false}} {
		below.Node = c.origin
		if got, err := n.holdsSessionVersion("never-written", below); err != nil || got != c.want {
			t.Errorf("absent key, version %v below the horizon %v: holds = %v, %v; want %v", below, h, got, err, c.want)
		}
	}
	at := h
	at.Node = n.cfg.ID
	if got, _ := n.holdsSessionVersion("never-written", at); got {
		t.Errorf("a version at the horizon itself counted as purged (purging is strict)")
	}
}

// A session that writes eventually to more keys than its token used to hold (16) still reads
// its own writes (DESIGN.md guarantee 4): an uncommitted write stays in the token until a node
// finds it committed, so a node that has not received an early write cannot serve it from
// before the write. Once the writes are committed the token sheds them again.
func TestSessionCoversManyUncommittedWrites(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.Gossip.AntiEntropyInterval = time.Hour // the isolated node's writes must not leak early
	})
	leader, iso := tc.leaderAndFollower()
	other := tc.otherThan(leader, iso)
	w := do(t, "PUT", leader, "/v1/kv/m0?consistency=strong", "old")
	if w.status != 200 {
		t.Fatalf("strong write: %d %s", w.status, w.body)
	}
	token := w.header.Get(client.HeaderSession)
	if r := do(t, "GET", other, "/v1/kv/m0?consistency=session", "", client.HeaderSession, token); r.status != 200 || r.body != "old" {
		t.Fatalf("session read on %s before the partition: %d %q", other.cfg.ID, r.status, r.body)
	}
	partition(t, tc, iso)
	const keys = 40
	for i := 0; i < keys; i++ {
		w := do(t, "PUT", iso, fmt.Sprintf("/v1/kv/m%d?consistency=eventual", i), "new", client.HeaderSession, token)
		if w.status != 200 {
			t.Fatalf("eventual write %d on the isolated %s: %d %s", i, iso.cfg.ID, w.status, w.body)
		}
		token = w.header.Get(client.HeaderSession)
	}
	if len(token) > 8<<10 {
		t.Errorf("the token of %d uncommitted writes is %d bytes", keys, len(token))
	}
	// other never received m0's new value: it must not answer with the old one.
	r := do(t, "GET", other, "/v1/kv/m0?consistency=session", "", client.HeaderSession, token)
	if r.status == 200 {
		t.Fatalf("session read of m0 on %s, which never received the session's write: 200 %q; want a refusal (503)", other.cfg.ID, r.body)
	}
	for _, n := range tc.nodes {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d", n.cfg.ID, r.status)
		}
	}
	// Healed: the writes are committed, every node serves them, and the token sheds them.
	waitUntil(t, "the session to read its writes on "+other.cfg.ID, 30*time.Second, func() bool {
		r := do(t, "GET", other, "/v1/kv/m0?consistency=session", "", client.HeaderSession, token)
		return r.status == 200 && r.body == "new"
	})
	waitUntil(t, "the token to shed the committed writes", 30*time.Second, func() bool {
		r := do(t, "GET", other, fmt.Sprintf("/v1/kv/m%d?consistency=session", keys-1), "", client.HeaderSession, token)
		if r.status != 200 || r.body != "new" {
			return false
		}
		tok, err := parseSession(r.header.Get(client.HeaderSession))
		return err == nil && len(tok.seen) == 0
	})
}

// A node must not shed a token's entry for a key it holds nothing of under a newer purge
// horizon unless it stamped that version itself (the rule holdsSessionVersion keeps): an
// eventual write superseded before any commit leaves every tentative layer, so no watermark
// holds the horizon below it, and the newer write may not have reached this node yet. Here
// n9's writes of k reached only holder: e, which the session reads there, then f, newer, which
// replaces it. Every member reports past e, a purge raises the horizon past it, and the session
// goes on writing on reader, whose answers settle the token once it holds more than
// shedAfterEntries. reader holds nothing of k: had it shed the entry, the session would read k
// as absent there, after it read e, while holder holds f.
func TestNodeShedsNoEntryItCannotTellWasPurged(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.PurgeInterval = 100 * time.Millisecond
		c.Gossip.AntiEntropyInterval = time.Hour // the writes injected into holder must stay there
	})
	leader, holder := tc.leaderAndFollower()
	reader := tc.otherThan(leader, holder)
	const key = "superseded"
	e := consistency.Version{Wall: time.Now().UnixNano(), Node: "n9"}
	f := consistency.Version{Wall: time.Now().Add(time.Minute).UnixNano(), Node: "n9"}
	if _, err := holder.store.MergeTentative([]replication.Write{{Key: key, Value: consistency.Value{Version: e, Data: []byte("e")}}}); err != nil {
		t.Fatal(err)
	}
	r := do(t, "GET", holder, "/v1/kv/"+key+"?consistency=session", "")
	if r.status != 200 || r.body != "e" {
		t.Fatalf("session read on %s: %d %q, want e", holder.cfg.ID, r.status, r.body)
	}
	token := r.header.Get(client.HeaderSession)
	if _, err := holder.store.MergeTentative([]replication.Write{{Key: key, Value: consistency.Value{Version: f, Data: []byte("f")}}}); err != nil {
		t.Fatal(err)
	}
	// A committed tombstone has every member report a watermark, and the leader purge.
	do(t, "PUT", leader, "/v1/kv/tomb", "x")
	if r := do(t, "DELETE", leader, "/v1/kv/tomb", ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	waitUntil(t, reader.cfg.ID+" to apply a purge horizon past e", 20*time.Second, func() bool {
		h, err := reader.store.PurgeHorizon()
		return err == nil && h.Newer(e)
	})
	for i := 0; i < shedAfterEntries; i++ {
		w := do(t, "PUT", reader, fmt.Sprintf("/v1/kv/filler-%d?consistency=eventual", i), "x", client.HeaderSession, token)
		if w.status != 200 {
			t.Fatalf("filler write %d: %d %s", i, w.status, w.body)
		}
		token = w.header.Get(client.HeaderSession)
	}
	if tok, err := parseSession(token); err != nil || tok.versionOf(key) != e {
		t.Errorf("%s shed the session's entry %v of %q (token of %d entries, %v): it holds nothing of the key and did not stamp that version", reader.cfg.ID, e, key, len(tok.seen), err)
	}
	if r := do(t, "GET", reader, "/v1/kv/"+key+"?consistency=session", "", client.HeaderSession, token); r.status == 404 || r.status == 200 && r.body != "f" {
		t.Errorf("session read of %q on %s after reading e on %s: %d %q; the key exists (%s holds f)", key, reader.cfg.ID, holder.cfg.ID, r.status, r.body, holder.cfg.ID)
	}
}

// A session list records the log index of the state it listed (docs/http-api.md: the token
// records the highest log index the session read at), not only the one prepareRead saw: a
// write committed in between is in the list, and a later session read of that key on a node
// that has applied only the lower index would answer an older value than the list showed.
func TestSessionListRecordsTheIndexItRead(t *testing.T) {
	var n *Node
	var fired atomic.Bool
	writes := make(chan reply, 1)
	tc := startCluster(t, 1, func(_ int, c *Config) {
		c.beforeList = func() {
			if fired.CompareAndSwap(false, true) {
				r, _ := tryDo("PUT", n, "/v1/kv/list/b?consistency=strong", "b")
				writes <- r
			}
		}
	})
	n = tc.nodes[0]
	w := do(t, "PUT", n, "/v1/kv/list/a?consistency=strong", "a")
	if w.status != 200 {
		t.Fatalf("put: %d %s", w.status, w.body)
	}
	r := do(t, "GET", n, "/v1/kv?consistency=session&prefix=list/", "", client.HeaderSession, w.header.Get(client.HeaderSession))
	if !fired.Load() {
		t.Fatal("the list never ran its hook")
	}
	written := <-writes
	if written.status != 200 {
		t.Fatalf("the write made during the list: %d %s", written.status, written.body)
	}
	if r.status != 200 || !strings.Contains(r.body, `"list/b"`) {
		t.Fatalf("session list: %d %s, want list/b in it", r.status, r.body)
	}
	listed, err := parseSession(r.header.Get(client.HeaderSession))
	if err != nil {
		t.Fatal(err)
	}
	wrote, err := parseSession(written.header.Get(client.HeaderSession))
	if err != nil {
		t.Fatal(err)
	}
	if listed.index < wrote.index {
		t.Errorf("the list showed list/b, committed at index %d, but its token records index %d", wrote.index, listed.index)
	}
}

// A session's strong write of a key comes after the session's own eventual write of it, though
// that write is not committed yet: a strong delete deletes it (the state machine used to find
// nothing committed, write no tombstone, and the eventual write stood again once committed), and
// a create-if-absent finds the key taken.
func TestSessionStrongWriteComesAfterItsEventualWrite(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.TestFaults = true })
	leader, f := tc.leaderAndFollower()

	w := do(t, "PUT", f, "/v1/kv/k?consistency=eventual", "x")
	if w.status != 200 {
		t.Fatalf("eventual write on %s: %d %s", f.cfg.ID, w.status, w.body)
	}
	del := do(t, "DELETE", f, "/v1/kv/k?consistency=strong", "", client.HeaderSession, w.header.Get(client.HeaderSession))
	if del.status != 200 {
		t.Fatalf("the session's strong delete right after its eventual write: %d %s, want 200", del.status, del.body)
	}
	w2 := do(t, "PUT", f, "/v1/kv/c?consistency=eventual", "x")
	create := do(t, "PUT", f, "/v1/kv/c?consistency=strong&if_absent=true", "y", client.HeaderSession, w2.header.Get(client.HeaderSession))
	if create.status != http.StatusConflict {
		t.Errorf("the session's create-if-absent right after its eventual write of the key: %d %s, want 409", create.status, create.body)
	}

	// Cut off, the node that took the write keeps it; the others cannot order the delete after
	// a write they have not seen, and say so rather than delete nothing.
	partition(t, tc, f)
	cut := do(t, "PUT", f, "/v1/kv/p?consistency=eventual", "x")
	if cut.status != 200 {
		t.Fatalf("eventual write on %s, cut off: %d %s", f.cfg.ID, cut.status, cut.body)
	}
	token := cut.header.Get(client.HeaderSession)
	early := do(t, "DELETE", leader, "/v1/kv/p?consistency=strong", "", client.HeaderSession, token)
	if early.status != http.StatusServiceUnavailable || errCode(t, early) != client.CodeUnavailable {
		t.Errorf("strong delete on %s of a write it cannot have: %d %s, want 503 unavailable", leader.cfg.ID, early.status, early.body)
	}
	for _, n := range tc.nodes {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d", n.cfg.ID, r.status)
		}
	}
	var late reply
	waitUntil(t, "the session's delete to go through once healed", 20*time.Second, func() bool {
		late = do(t, "DELETE", leader, "/v1/kv/p?consistency=strong", "", client.HeaderSession, token)
		return late.status == 200
	})
	token = late.header.Get(client.HeaderSession)

	for _, key := range []string{"k", "p"} {
		waitUntil(t, "the eventual write of "+key+" to leave every tentative layer", 30*time.Second, func() bool {
			for _, n := range tc.nodes {
				if _, ok, _ := n.store.Tentative(key); ok {
					return false
				}
			}
			return true
		})
		for _, n := range tc.nodes {
			if r := do(t, "GET", n, "/v1/kv/"+key+"?consistency=strong", ""); r.status != 404 {
				t.Errorf("%s on %s after the session deleted it: %d %q, want 404 (the delete came after the write)", key, n.cfg.ID, r.status, r.body)
			}
		}
	}
	for _, n := range tc.nodes {
		if r := do(t, "GET", n, "/v1/kv/p?consistency=session", "", client.HeaderSession, token); r.status != 404 {
			t.Errorf("session read of p on %s after the session deleted it: %d %q, want 404", n.cfg.ID, r.status, r.body)
		}
	}
}

// A session that deleted a key strongly holds the tombstone's version, stamped by the leader
// of the time (NODE/s). Once the tombstone is purged, any node that has applied the session's
// index may answer the key's absence. Only that leader could before, so when it was gone for
// good no node ever served the session a read of that key again (503 on every node).
func TestSessionReadsItsPurgedDeleteAfterTheStampingLeaderIsGone(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.PurgeInterval = 100 * time.Millisecond })
	leader, follower := tc.leaderAndFollower()
	w := do(t, "PUT", follower, "/v1/kv/gone?consistency=strong", "v")
	del := do(t, "DELETE", follower, "/v1/kv/gone?consistency=strong", "", client.HeaderSession, w.header.Get(client.HeaderSession))
	if del.status != 200 {
		t.Fatalf("delete: %d %s", del.status, del.body)
	}
	tomb, _ := consistency.ParseVersion(del.header.Get(client.HeaderVersion))
	token := del.header.Get(client.HeaderSession)
	waitUntil(t, "the tombstone to be purged everywhere", 20*time.Second, func() bool {
		for _, n := range tc.nodes {
			h, err := n.store.PurgeHorizon()
			if _, ok, gerr := n.store.Get("gone"); err != nil || gerr != nil || ok || tomb.Newer(h) {
				return false
			}
		}
		return true
	})
	for i, n := range tc.nodes {
		if n == leader {
			tc.stopNode(i)
		}
	}
	waitUntil(t, "a new leader", 20*time.Second, func() bool {
		id, _ := follower.raft.Leader()
		return id != "" && id != leader.cfg.ID
	})
	r := do(t, "GET", follower, "/v1/kv/gone?consistency=session", "", client.HeaderSession, token)
	if r.status != 404 {
		t.Errorf("session read of its purged delete once %s (which stamped it) is gone: %d %s, want 404", leader.cfg.ID, r.status, r.body)
	}
}

// A session whose last version of a key is an eventual write another node stamped, committed
// and then deleted and purged since, can still delete or create that key strongly through any
// node: with the purge horizon past that version, no node can ever commit it again (the state
// machine refuses writes below the horizon), and it was committed or superseded already, so
// there is nothing to commit first. Only the node that stamped it could tell before; every
// other node waited for a version no node keeps and refused (503), for good once that node was
// gone.
func TestSessionStrongWriteAfterItsPurgedEventualWrite(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.PurgeInterval = 100 * time.Millisecond })
	leader, origin := tc.leaderAndFollower()
	other := tc.otherThan(leader, origin)
	const key = "purged-eventual"
	w := do(t, "PUT", origin, "/v1/kv/"+key+"?consistency=eventual", "x")
	if w.status != 200 {
		t.Fatalf("eventual write on %s: %d %s", origin.cfg.ID, w.status, w.body)
	}
	token := w.header.Get(client.HeaderSession)
	awaitCommitted(t, leader, key, "x")
	del := do(t, "DELETE", leader, "/v1/kv/"+key+"?consistency=strong", "") // another client's delete
	if del.status != 200 {
		t.Fatalf("delete: %d %s", del.status, del.body)
	}
	tomb, _ := consistency.ParseVersion(del.header.Get(client.HeaderVersion))
	waitUntil(t, "the tombstone to be purged everywhere", 20*time.Second, func() bool {
		for _, n := range tc.nodes {
			h, err := n.store.PurgeHorizon()
			if _, ok, gerr := n.store.Get(key); err != nil || gerr != nil || ok || tomb.Newer(h) {
				return false
			}
		}
		return true
	})
	for i, n := range tc.nodes {
		if n == origin {
			tc.stopNode(i)
		}
	}
	for _, n := range []*Node{other, leader} {
		r := do(t, "PUT", n, "/v1/kv/"+key+"?consistency=strong&if_absent=true", "y", client.HeaderSession, token)
		if r.status == 409 {
			continue // created through the node asked before
		}
		if r.status != 200 {
			t.Errorf("the session's create-if-absent of %q on %s once its eventual write was purged (and %s, which stamped it, is gone): %d %s, want 200", key, n.cfg.ID, origin.cfg.ID, r.status, r.body)
		}
	}
}

// A conflict shows the session the key's current version (or its absence) at the index the
// condition was judged at, so the session's later reads must not show it anything older, as
// after a read. The answer's token recorded neither: a create-if-absent that failed on a value
// another client had written, then a session read on a node that had not applied that value
// yet, answered 404 (kvjepsen's session checker counts the conflict as an observation, and calls
// that a monotonic-reads violation).
func TestSessionConflictCountsAsARead(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.TestFaults = true })
	leader, lagging := tc.leaderAndFollower()
	if r := do(t, "PUT", leader, "/v1/kv/other?consistency=strong", "x"); r.status != 200 {
		t.Fatalf("write: %d %s", r.status, r.body)
	}
	awaitCommitted(t, lagging, "other", "x")
	partition(t, tc, lagging) // it applies nothing from here on
	if r := do(t, "PUT", leader, "/v1/kv/taken?consistency=strong", "theirs"); r.status != 200 {
		t.Fatalf("another client's write: %d %s", r.status, r.body)
	}
	for _, n := range []*Node{leader, tc.otherThan(leader, lagging)} { // proposed there, or forwarded
		for _, q := range []string{"if_absent=true", "if_version=" + "1.0%40n1"} {
			c := do(t, "PUT", n, "/v1/kv/taken?consistency=strong&"+q, "mine")
			if c.status != http.StatusConflict {
				t.Fatalf("%s on a taken key through %s: %d %s, want 409", q, n.cfg.ID, c.status, c.body)
			}
			token := c.header.Get(client.HeaderSession)
			r := do(t, "GET", lagging, "/v1/kv/taken?consistency=session", "", client.HeaderSession, token)
			if r.status == http.StatusNotFound || r.status == 200 && r.body != "theirs" {
				t.Errorf("after a conflict (%s through %s) naming version %s, a session read on %s (which has not applied it) answered %d %q",
					q, n.cfg.ID, c.header.Get(client.HeaderVersion), lagging.cfg.ID, r.status, r.body)
			}
		}
	}
	// A conflict on an absent key (a compare-and-set naming a version) is judged at an index
	// too: the session must not then read a state older than that, e.g. a value deleted before.
	if r := do(t, "DELETE", leader, "/v1/kv/other?consistency=strong", ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	c := do(t, "PUT", leader, "/v1/kv/other?consistency=strong&if_version=1.0%40n1", "mine")
	if c.status != http.StatusConflict {
		t.Fatalf("compare-and-set on a deleted key: %d %s, want 409", c.status, c.body)
	}
	r := do(t, "GET", lagging, "/v1/kv/other?consistency=session", "", client.HeaderSession, c.header.Get(client.HeaderSession))
	if r.status == 200 {
		t.Errorf("after a conflict finding the key absent, a session read on %s (which has not applied the delete) answered its deleted value %q", lagging.cfg.ID, r.body)
	}
}

// A session's strong delete or conditional write of a key whose eventual write it saw first has
// that write committed (commitSessionVersionFirst), then proposes: two rounds with the leader.
// Each waited up to LeaderWait of its own, so the request could take twice --leader-wait, past
// the client's 10 s per attempt with the default 5 s (the client then reports outcome_unknown
// whatever the server answers later). One LeaderWait bounds the whole request, as the flag says.
func TestSessionStrongDeleteWaitsOneLeaderWait(t *testing.T) {
	const leaderWait = 2 * time.Second
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.LeaderWait = leaderWait
		c.disableCommitter = true // only the delete commits the eventual write
	})
	_, f := tc.leaderAndFollower()
	w := do(t, "PUT", f, "/v1/kv/slow?consistency=eventual", "x")
	if w.status != 200 {
		t.Fatalf("eventual write on %s: %d %s", f.cfg.ID, w.status, w.body)
	}
	// Each of f's calls to the leader (the commit, then the forwarded delete) now takes most of
	// a LeaderWait.
	if r := do(t, "PUT", f, "/v1/test/faults", `{"delay":"1500ms"}`); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", f.cfg.ID, r.status, r.body)
	}
	start := time.Now()
	del := do(t, "DELETE", f, "/v1/kv/slow?consistency=strong", "", client.HeaderSession, w.header.Get(client.HeaderSession))
	if took := time.Since(start); took > leaderWait+900*time.Millisecond {
		t.Errorf("the session's strong delete on %s answered %d after %v, over its LeaderWait of %v", f.cfg.ID, del.status, took.Round(time.Millisecond), leaderWait)
	}
}

// A session's eventual write of a key whose entry the token has shed (settleSession: committed at
// or below the token's index, its version kept only in floor) is refused, as one whose entry is
// still there, when the node taking it has not applied the token's index and its clock is more
// than sessionClockLead behind the version: the node could only stamp it below the session's
// earlier write of the key. It was acknowledged, the session's next read returned its earlier
// write, and once the node applied the log last-writer-wins dropped the newer one for good.
func TestSessionWriteAfterItsShedEntryIsRefusedWhenStampedBelow(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.TestFaults = true })
	leader, ahead := tc.leaderAndFollower()
	lagging := tc.otherThan(leader, ahead)
	// lagging hears nothing (no log, no gossip), so its clock never learns of ahead's writes.
	partition(t, tc, lagging)
	skew := sessionClockLead + 5*time.Second
	if r := do(t, "PUT", ahead, "/v1/test/faults", fmt.Sprintf(`{"clock_offset":"%s","drop_in":["%s"],"drop_out":["%s"]}`, skew, lagging.cfg.ID, lagging.cfg.ID)); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", ahead.cfg.ID, r.status, r.body)
	}
	first := do(t, "PUT", ahead, "/v1/kv/k?consistency=eventual", "first")
	if first.status != 200 {
		t.Fatalf("eventual write on %s: %d %s", ahead.cfg.ID, first.status, first.body)
	}
	v, err := consistency.ParseVersion(first.header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}
	token := first.header.Get(client.HeaderSession)
	awaitCommitted(t, leader, "k", "first")
	// More entries than shedAfterEntries: the leader, which has committed them all, sheds them.
	for i := 0; i <= shedAfterEntries; i++ {
		w := do(t, "PUT", leader, fmt.Sprintf("/v1/kv/filler-%d?consistency=strong", i), "x", client.HeaderSession, token)
		if w.status != 200 {
			t.Fatalf("filler write %d: %d %s", i, w.status, w.body)
		}
		token = w.header.Get(client.HeaderSession)
	}
	if tok, err := parseSession(token); err != nil || !tok.versionOf("k").IsZero() || tok.floor.Compare(v) < 0 {
		t.Fatalf("the token %+v (%v) still holds k's entry, or its floor is below %v: the test needs it shed", tok, err, v)
	}
	second := do(t, "PUT", lagging, "/v1/kv/k?consistency=eventual", "second", client.HeaderSession, token)
	if second.status == 200 {
		if v2, _ := consistency.ParseVersion(second.header.Get(client.HeaderVersion)); !v2.Newer(v) {
			t.Errorf("the session's second write of k on %s (behind, its clock %v behind %s's) was acknowledged with version %v, below its first %v: last-writer-wins drops it",
				lagging.cfg.ID, skew, ahead.cfg.ID, v2, v)
		}
	} else if second.status != http.StatusServiceUnavailable || errCode(t, second) != client.CodeUnavailable {
		t.Errorf("the session's second write of k on %s: %d %s, want 503 unavailable", lagging.cfg.ID, second.status, second.body)
	}
	for _, n := range tc.nodes {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d", n.cfg.ID, r.status)
		}
	}
	// Caught up, the node stamps the retried write after the first (its clock observed it).
	waitUntil(t, "the retried second write to be taken", 20*time.Second, func() bool {
		second = do(t, "PUT", lagging, "/v1/kv/k?consistency=eventual", "second", client.HeaderSession, token)
		return second.status == 200
	})
	token = second.header.Get(client.HeaderSession)
	waitUntil(t, "the session to read its second write", 20*time.Second, func() bool {
		r := do(t, "GET", leader, "/v1/kv/k?consistency=session", "", client.HeaderSession, token)
		return r.status == 200 && r.body == "second"
	})
}
