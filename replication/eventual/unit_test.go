package eventual

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

func validConfig() Config {
	c := DefaultConfig()
	c.NodeID = "n1"
	c.BindAddr = "127.0.0.1:7201"
	c.HTTPAddr = "127.0.0.1:7001"
	c.RaftAddr = "127.0.0.1:7101"
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"zero fields take defaults", func(c *Config) { *c = Config{NodeID: "n1", HTTPAddr: "127.0.0.1:7001"} }, ""},
		{"wildcard bind", func(c *Config) { c.BindAddr = ":7201" }, ""},
		{"port zero", func(c *Config) { c.BindAddr = "127.0.0.1:0" }, ""},
		{"local profile", func(c *Config) { c.Profile = ProfileLocal }, ""},
		{"named peer", func(c *Config) { c.Peers = []string{"n2/127.0.0.1:7202", "node-2.example:7202"} }, ""},
		{"16-byte key", func(c *Config) { c.SecretKey = make([]byte, 16) }, ""},
		{"empty node id", func(c *Config) { c.NodeID = "" }, "node id is empty"},
		{"node id with slash", func(c *Config) { c.NodeID = "a/b" }, "must not contain"},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "bind address"},
		{"bind host name", func(c *Config) { c.BindAddr = "localhost:7201" }, "not a host name"},
		{"bind bad port", func(c *Config) { c.BindAddr = "127.0.0.1:99999" }, "bad port"},
		{"unknown profile", func(c *Config) { c.Profile = "wan" }, "unknown gossip profile"},
		{"advertise unspecified", func(c *Config) { c.AdvertiseAddr = "0.0.0.0:7201" }, "cannot dial"},
		{"bad peer", func(c *Config) { c.Peers = []string{"nowhere"} }, "peer"},
		{"no http address", func(c *Config) { c.HTTPAddr = "" }, "http address"},
		{"wildcard http address", func(c *Config) { c.HTTPAddr = "0.0.0.0:7001" }, "wildcard"},
		{"empty http host", func(c *Config) { c.HTTPAddr = ":7001" }, "wildcard"},
		{"http port zero", func(c *Config) { c.HTTPAddr = "127.0.0.1:0" }, "not 0"},
		{"http host name", func(c *Config) { c.HTTPAddr = "node-1.example:7001" }, ""},
		{"bad key", func(c *Config) { c.SecretKey = []byte("short") }, "secret key"},
		{"label too long", func(c *Config) { c.Label = strings.Repeat("l", 300) }, "label"},
		{"metadata too big", func(c *Config) { c.RaftAddr = strings.Repeat("r", 600) + ":1" }, "metadata"},
		{"negative interval", func(c *Config) { c.AntiEntropyInterval = -time.Second }, "anti-entropy interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate() = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	c := validConfig()
	c.NodeID = ""
	if _, err := Open(c, newMemStore()); err == nil || !strings.Contains(err.Error(), "node id") {
		t.Fatalf("Open with an empty node id = %v, want a config error", err)
	}
}

func TestMemberlistConfigFollowsProfile(t *testing.T) {
	c := validConfig().withDefaults()
	lan := c.memberlistConfig()
	c.Profile = ProfileLocal
	local := c.memberlistConfig()
	if lan.Name != "n1" || lan.BindAddr != "127.0.0.1" || lan.BindPort != 7201 || lan.Label != DefaultLabel {
		t.Errorf("lan config: name %q bind %s:%d label %q", lan.Name, lan.BindAddr, lan.BindPort, lan.Label)
	}
	if lan.ProbeTimeout != memberlist.DefaultLANConfig().ProbeTimeout || local.ProbeTimeout != memberlist.DefaultLocalConfig().ProbeTimeout {
		t.Errorf("probe timeouts lan %v local %v: want memberlist's profiles", lan.ProbeTimeout, local.ProbeTimeout)
	}
	if lan.DeadNodeReclaimTime <= 0 || local.DeadNodeReclaimTime <= 0 {
		t.Errorf("dead node reclaim lan %v local %v: want positive, so a restart on a new port can rejoin", lan.DeadNodeReclaimTime, local.DeadNodeReclaimTime)
	}
	budget := maxGossipMessage(lan)
	c.SecretKey = make([]byte, 32)
	if enc := maxGossipMessage(c.memberlistConfig()); enc >= budget || budget > 1400-2-3-2-len(DefaultLabel) {
		t.Errorf("packet budgets: plain %d, encrypted %d", budget, enc)
	}
}

func randomVersion(r *rand.Rand) consistency.Version {
	return consistency.Version{Wall: r.Int64(), Logical: r.Uint32(), Node: []string{"n1", "n2", "a-long-node-name"}[r.IntN(3)]}
}

func TestWireRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	w := replication.Write{Key: "k", Value: consistency.Value{Version: randomVersion(r), Data: []byte("value")}}
	tomb := replication.Write{Key: "gone", Value: consistency.Value{Version: randomVersion(r), Tombstone: true}}

	for _, want := range []replication.Write{w, tomb} {
		m, err := decodeMsg(encodeWriteMsg("n1", want))
		if err != nil || m.typ != msgWrite || m.sender != "n1" || !reflect.DeepEqual(m.writes, []replication.Write{want}) {
			t.Errorf("write message round trip: %+v, %v; want %+v", m, err, want)
		}
	}
	n := notice{Key: "big", Version: randomVersion(r), Origin: "127.0.0.1:7001"}
	if m, err := decodeMsg(encodeNoticeMsg("n2", n)); err != nil || m.typ != msgNotice || m.sender != "n2" || m.notice != n {
		t.Errorf("notice round trip: %+v, %v", m, err)
	}
	for _, want := range []nodeMeta{{HTTPAddr: "h:1", RaftAddr: "r:2"}, {HTTPAddr: "h:1", Leaving: true}} {
		if got, err := decodeMeta(encodeMeta(want)); err != nil || got != want {
			t.Errorf("meta round trip: %+v %v, want %+v", got, err, want)
		}
	}
	page := &digestPage{Sender: "n1", From: "a", To: "m", HasTo: true, Entries: map[string]consistency.Version{"b": randomVersion(r), "c": randomVersion(r)}}
	if got, err := decodeDigestPage(encodeDigestPage(page)); err != nil || !reflect.DeepEqual(got, page) {
		t.Errorf("digest page round trip: %+v, %v", got, err)
	}
	rep := &digestReply{Writes: []replication.Write{w, tomb}, Newer: []string{"x", "y"}, Truncated: true}
	if got, err := decodeDigestReply(encodeDigestReply(rep)); err != nil || !reflect.DeepEqual(got, rep) {
		t.Errorf("digest reply round trip: %+v, %v", got, err)
	}
	if sender, ws, err := decodeWritesBody(encodeWritesBody("n3", []replication.Write{w})); err != nil || sender != "n3" || !reflect.DeepEqual(ws, []replication.Write{w}) {
		t.Errorf("writes body round trip: %q %+v %v", sender, ws, err)
	}
}

// TestWritesMessagesPackWithinTheBudget: an eager push packs writes into as few messages as
// the packet budget allows, never over it, and the receiver gets every write back, in order.
func TestWritesMessagesPackWithinTheBudget(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var ws []replication.Write
	for i := range 300 {
		w := replication.Write{Key: fmt.Sprintf("key/%d", i), Value: consistency.Value{Version: randomVersion(r), Data: bytes.Repeat([]byte{'v'}, 1+r.IntN(200))}}
		if i%17 == 0 {
			w.Value.Tombstone, w.Value.Data = true, nil
		}
		ws = append(ws, w)
	}
	for _, c := range []struct {
		limit      int
		recipients []string
		typ        msgType
	}{
		{300, nil, msgWrites}, {1000, nil, msgWrites}, {1331, nil, msgWrites}, {64 << 10, nil, msgWrites},
		{300, []string{"n2", "n3"}, msgPush}, {1331, []string{"n2", "n3", "n4", "n5"}, msgPush},
		{64 << 10, []string{"n2"}, msgPush},
	} {
		limit := c.limit
		_, msgs := appendWritesMsgs(nil, "n1", c.recipients, ws, limit)
		// Appending to a used buffer (the pusher reuses one) leaves its contents alone and
		// makes the same messages.
		used := bytes.Repeat([]byte{0xee}, 100)
		buf, again := appendWritesMsgs(used[:50:60], "n1", c.recipients, ws, limit)
		if !reflect.DeepEqual(again, msgs) || !bytes.Equal(buf[:50], used[:50]) {
			t.Fatalf("limit %d, recipients %q: encoding after 50 used bytes differs", limit, c.recipients)
		}
		var got []replication.Write
		for i, msg := range msgs {
			if len(msg) > limit {
				t.Fatalf("limit %d: a message of %d bytes", limit, len(msg))
			}
			m, err := decodeMsg(msg)
			if err != nil || m.typ != c.typ || m.sender != "n1" || !slices.Equal(m.recipients, c.recipients) {
				t.Fatalf("limit %d, recipients %q: decode = %+v, %v", limit, c.recipients, m, err)
			}
			// Packed greedily: the next message's first write would not have fitted in this one
			// (give or take the count's growing by a byte).
			if i > 0 {
				if next := len(replication.AppendWrite(nil, m.writes[0])); len(msgs[i-1])+next < limit-1 {
					t.Errorf("limit %d: message %d (%d bytes) had room for the next write (%d bytes)", limit, i-1, len(msgs[i-1]), next)
				}
			}
			got = append(got, m.writes...)
		}
		if !reflect.DeepEqual(got, ws) {
			t.Fatalf("limit %d: %d writes came back, want the %d sent, in order", limit, len(got), len(ws))
		}
		if limit == 64<<10 && len(msgs) != 1 {
			t.Errorf("limit %d: %d messages, want all in one", limit, len(msgs))
		}
	}
	// A write too big for any message is left out; the others still go.
	huge := replication.Write{Key: "huge", Value: consistency.Value{Version: randomVersion(r), Data: make([]byte, 2000)}}
	_, msgs := appendWritesMsgs(nil, "n1", nil, []replication.Write{ws[0], huge, ws[1]}, 1000)
	var got []replication.Write
	for _, msg := range msgs {
		m, err := decodeMsg(msg)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.writes...)
	}
	if !reflect.DeepEqual(got, ws[:2]) {
		t.Errorf("with an oversize write in the middle: got %d writes, want the 2 that fit", len(got))
	}
	if _, msgs := appendWritesMsgs(nil, "n1", nil, nil, 1000); len(msgs) != 0 {
		t.Errorf("no writes: %d messages, want none", len(msgs))
	}
}

// TestWireRejectsCorruptInput feeds every truncation and random byte flips of each encoding to
// its decoder: errors are fine, panics and unknown formats accepted are not.
// writesMsg is the one message packing ws for recipients (msgWrites if none).
func writesMsg(recipients []string, ws ...replication.Write) []byte {
	_, msgs := appendWritesMsgs(nil, "n1", recipients, ws, 1000)
	return msgs[0]
}

func TestWireRejectsCorruptInput(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	w := replication.Write{Key: "key", Value: consistency.Value{Version: randomVersion(r), Data: []byte("some data")}}
	encodings := map[string]struct {
		b      []byte
		decode func([]byte) error
	}{
		"write":  {encodeWriteMsg("n1", w), func(b []byte) error { _, err := decodeMsg(b); return err }},
		"writes": {writesMsg(nil, w, w), func(b []byte) error { _, err := decodeMsg(b); return err }},
		"push":   {writesMsg([]string{"n2", "n3"}, w, w), func(b []byte) error { _, err := decodeMsg(b); return err }},
		"notice": {encodeNoticeMsg("n1", notice{Key: "k", Version: w.Value.Version, Origin: "o:1"}), func(b []byte) error { _, err := decodeMsg(b); return err }},
		"meta":   {encodeMeta(nodeMeta{HTTPAddr: "h:1", RaftAddr: "r:1"}), func(b []byte) error { _, err := decodeMeta(b); return err }},
		"page": {encodeDigestPage(&digestPage{Sender: "n1", Entries: map[string]consistency.Version{"a": w.Value.Version}}),
			func(b []byte) error { _, err := decodeDigestPage(b); return err }},
		"reply": {encodeDigestReply(&digestReply{Writes: []replication.Write{w}, Newer: []string{"a"}}),
			func(b []byte) error { _, err := decodeDigestReply(b); return err }},
		"body": {encodeWritesBody("n1", []replication.Write{w}), func(b []byte) error { _, _, err := decodeWritesBody(b); return err }},
	}
	for name, enc := range encodings {
		for i := range len(enc.b) {
			if err := enc.decode(enc.b[:i]); err == nil {
				t.Errorf("%s truncated to %d of %d bytes decoded without error", name, i, len(enc.b))
			}
		}
		future := bytes.Clone(enc.b)
		future[0] = wireFormat + 1
		if err := enc.decode(future); err == nil {
			t.Errorf("%s in format %d decoded without error", name, future[0])
		}
		for range 200 {
			b := bytes.Clone(enc.b)
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			_ = enc.decode(b) // must not panic
		}
	}
}

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5000", slog.LevelDebug, "Stream connection from=127.0.0.1:5000"},
		{"[INFO] memberlist: Suspect n3 has failed, no acks received", slog.LevelInfo, "Suspect n3 has failed, no acks received"},
		{"[WARN] memberlist: Refuting a suspect message (from: n2)", slog.LevelWarn, "Refuting a suspect message (from: n2)"},
		{"[ERR] memberlist: Conflicting address for n3.", slog.LevelError, "Conflicting address for n3."},
		{"[ERR] Failed to shutdown transport: x", slog.LevelError, "Failed to shutdown transport: x"},
		{"no level at all", slog.LevelInfo, "no level at all"},
	}
	for _, tt := range tests {
		level, msg := parseLogLine(tt.line)
		if level != tt.level || msg != tt.msg {
			t.Errorf("parseLogLine(%q) = %v %q, want %v %q", tt.line, level, msg, tt.level, tt.msg)
		}
	}
	if name, ok := suspectedNode("Suspect n3 has failed, no acks received"); !ok || name != "n3" {
		t.Errorf("suspectedNode = %q %v, want n3", name, ok)
	}
	if _, ok := suspectedNode("Marking n3 as failed, suspect timeout reached (0 peer confirmations)"); ok {
		t.Error("suspectedNode matched a death")
	}
}

func TestLogWriterRoutesLevels(t *testing.T) {
	var buf bytes.Buffer
	var observed []string
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ml := newMemberlistLogger(logger, func(_ slog.Level, msg string) { observed = append(observed, msg) })
	ml.Printf("[DEBUG] memberlist: chatter")
	ml.Printf("[WARN] memberlist: something odd")
	out := buf.String()
	if strings.Contains(out, "chatter") || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "something odd") {
		t.Errorf("log output %q: want the warning and not the debug line", out)
	}
	if len(observed) != 2 {
		t.Errorf("observer saw %v, want both lines", observed)
	}
}

func TestMemberTableStates(t *testing.T) {
	clock := time.Unix(1000, 0)
	tab := newMemberTable("n1")
	tab.now = func() time.Time { return clock }
	node := func(name string, state memberlist.NodeStateType) *memberlist.Node {
		return &memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 1), Port: 7200, Meta: encodeMeta(nodeMeta{HTTPAddr: "h:" + name, RaftAddr: "r:" + name}), State: state}
	}
	tab.observe(node("n1", memberlist.StateAlive), StateAlive)
	tab.observe(node("n2", memberlist.StateAlive), StateAlive)
	if tab.liveCount() != 2 {
		t.Fatalf("live = %d, want 2", tab.liveCount())
	}
	clock = clock.Add(time.Second)
	if !tab.suspect("n2") || tab.suspect("n1") {
		t.Error("want n2 (not self) to become suspect")
	}
	m, _ := tab.get("n2")
	if m.State != StateSuspect || !m.Since.Equal(clock) || m.HTTPAddr != "h:n2" || m.GossipAddr != "127.0.0.1:7200" {
		t.Errorf("n2 = %+v", m)
	}
	clock = clock.Add(time.Second)
	tab.observe(node("n2", memberlist.StateDead), StateDead)
	if tab.suspect("n2") || tab.answered("n2") {
		t.Error("a dead member must not turn suspect or alive by probes")
	}
	if tab.liveCount() != 1 {
		t.Errorf("live = %d, want 1", tab.liveCount())
	}
	if got := tab.list(); len(got) != 2 || got[1].State != StateDead || !got[1].Since.Equal(clock) {
		t.Errorf("list = %+v: want n2 still reported, dead since its death", got)
	}
	if tab.forget("n1") || !tab.forget("n2") || len(tab.list()) != 1 {
		t.Error("forget: want only the dead n2 forgotten")
	}
	leaving := node("n3", memberlist.StateAlive)
	leaving.Meta = encodeMeta(nodeMeta{HTTPAddr: "h:n3", Leaving: true})
	tab.observe(leaving, StateAlive)
	if _, m := tab.observe(leaving, StateDead); m.State != StateLeft {
		t.Errorf("a member gone after announcing its leave is %s, want left", m.State)
	}
}

// countingStore counts the bytes of the values GetTentative returns.
type countingStore struct {
	*memStore
	read atomic.Int64
}

func (s *countingStore) GetTentative(keys []string) ([]replication.Write, error) {
	ws, err := s.memStore.GetTentative(keys)
	for _, w := range ws {
		s.read.Add(int64(len(w.Value.Data)))
	}
	return ws, err
}

// A digest reply, or a push, over large values reads from the store about what it sends, not
// getBatch values at once; over small values it still reads getBatch keys at a time.
func TestTransfersReadLargeValuesWithinTheBudget(t *testing.T) {
	const budget, valueSize = 256 << 10, 64 << 10
	st := &countingStore{memStore: newMemStore()}
	var keys []string
	for i := range 64 {
		key := fmt.Sprintf("k%02d", i)
		keys = append(keys, key)
		st.MergeTentative([]replication.Write{put(key, strings.Repeat("v", valueSize), stamp(int64(i+1), "n1"))})
	}
	e := &Engine{cfg: Config{NodeID: "n1", transferBudget: budget}, store: st}
	ws, truncated, err := e.collect(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !truncated || len(ws) == 0 || len(ws)*valueSize > budget {
		t.Fatalf("collected %d writes of %d bytes (truncated %v) under a %d-byte budget", len(ws), valueSize, truncated, budget)
	}
	if read := st.read.Load(); read > budget+firstGetBatch*valueSize {
		t.Errorf("read %d bytes from the store to send %d", read, len(ws)*valueSize)
	}

	small := &countingStore{memStore: newMemStore()}
	var calls []int
	e.store = small
	for i := range 600 {
		small.MergeTentative([]replication.Write{put(fmt.Sprintf("s%03d", i), "v", stamp(int64(i+1), "n1"))})
	}
	var smallKeys []string
	for i := range 600 {
		smallKeys = append(smallKeys, fmt.Sprintf("s%03d", i))
	}
	if err := e.readTentative(smallKeys, func(ws []replication.Write) bool {
		calls = append(calls, len(ws))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 4 || calls[1] != getBatch {
		t.Errorf("600 small values read in groups of %v, want %d, then %d at a time", calls, firstGetBatch, getBatch)
	}
}

// TestHostileCountsAllocateLittle: a digest page's entry count sized its map before any entry
// was read: a 1 MiB page posted to the digest endpoint claiming a million entries allocated
// 117 MiB (the endpoint takes 64 MiB bodies: 7 GB).
func TestHostileCountsAllocateLittle(t *testing.T) {
	const size = 1 << 20
	page := binary.AppendUvarint([]byte{wireFormat, 0, 0, 0, 0}, size)
	page = append(page, make([]byte, size)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := decodeDigestPage(page); err == nil {
		t.Fatal("a page of zeros decoded")
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 8*size {
		t.Errorf("decoding %d hostile bytes allocated %d", size, got)
	}
}
