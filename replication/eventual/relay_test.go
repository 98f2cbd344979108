package eventual

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/fault"
)

// The rule for gossiping on a pushed write, from one receiver's member table: only a push that
// named every live member the receiver knows of (itself included) is not relayed.
func TestRelayNeeded(t *testing.T) {
	tab := newMemberTable("n2")
	for i, id := range []string{"n1", "n2", "n3", "n4", "n5"} {
		tab.observe(&memberlist.Node{Name: id, Addr: net.IPv4(127, 0, 0, 1), Port: uint16(7400 + i)}, StateAlive)
	}
	tab.suspect("n4")
	tab.observe(&memberlist.Node{Name: "n5", Addr: net.IPv4(127, 0, 0, 1), Port: 7404}, StateDead)
	e := &Engine{cfg: Config{NodeID: "n2"}, members: tab}
	for _, c := range []struct {
		name       string
		typ        msgType
		recipients []string
		relay      bool
	}{
		{"every live member named", msgPush, []string{"n2", "n3", "n4"}, false},
		{"the sender named too", msgPush, []string{"n1", "n2", "n3", "n4"}, false},
		{"a suspect member left out", msgPush, []string{"n2", "n3"}, true},
		{"an alive member left out", msgPush, []string{"n2", "n4"}, true},
		{"this node left out", msgPush, []string{"n3", "n4"}, true},
		{"the dead member needs no naming", msgPush, []string{"n3", "n4", "n2"}, false},
		{"a plain packed push", msgWrites, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := gossipMsg{typ: c.typ, sender: "n1", recipients: c.recipients}
			if got := m.typ != msgPush || e.relayNeeded(m); got != c.relay {
				t.Errorf("relay = %v, want %v", got, c.relay)
			}
		})
	}
	peers, live := tab.alivePeers()
	if len(peers) != 2 || live != 3 {
		t.Errorf("alivePeers = %d peers, %d live; want n1 and n3 alive, n4 suspect too", len(peers), live)
	}
}

// A batch mixing a push that reached everyone with other gossip stores everything in one merge
// and hands on for gossip all but the pushed writes.
func TestReceiveRelaysAllButDeliveredWrites(t *testing.T) {
	tab := newMemberTable("n2")
	for i, id := range []string{"n1", "n2", "n3", "n4"} {
		tab.observe(&memberlist.Node{Name: id, Addr: net.IPv4(127, 0, 0, 1), Port: uint16(7400 + i)}, StateAlive)
	}
	st := newMemStore()
	e := &Engine{cfg: Config{NodeID: "n2"}, store: st, members: tab, logger: slog.New(slog.DiscardHandler), unsentWake: make(chan struct{}, 1), queue: &memberlist.TransmitLimitedQueue{NumNodes: tab.liveCount}}
	now := time.Now().UnixNano()
	delivered := put("delivered", "a", stamp(now, "n1"))
	gossiped := put("gossiped", "b", stamp(now, "n3"))
	partial := put("partial", "c", stamp(now, "n1"))
	old := put("old", "d", stamp(now, "n1"))
	if _, err := st.MergeTentative([]replication.Write{old}); err != nil {
		t.Fatal(err)
	}
	msg := func(recipients []string, ws ...replication.Write) []byte {
		_, msgs := appendWritesMsgs(nil, "n1", recipients, ws, 1400)
		return msgs[0]
	}
	e.receive([][]byte{
		msg([]string{"n2", "n3", "n4"}, delivered, old),
		encodeWriteMsg("n3", gossiped),
		msg([]string{"n2", "n3"}, partial), // n4 is alive and was left out
	})
	for _, w := range []replication.Write{delivered, gossiped, partial} {
		if !st.has(w.Key, w.Value.Version) {
			t.Errorf("%s was not stored", w.Key)
		}
	}
	var relayed []string
	for _, w := range e.unsent {
		relayed = append(relayed, w.Key)
	}
	if !slices.Equal(relayed, []string{"gossiped", "partial"}) {
		t.Errorf("handed on for gossip %q, want gossiped and partial", relayed)
	}
	if s := e.Stats(); s.RelaysSkipped != 1 || s.GossipMerged != 3 {
		t.Errorf("stats %+v: want 3 merged, 1 relay skipped", s)
	}
	// A batch of nothing but delivered pushes hands on nothing.
	e.unsent = nil
	e.receive([][]byte{msg([]string{"n2", "n3", "n4"}, put("delivered", "e", stamp(now+1, "n1")))})
	if len(e.unsent) != 0 || e.Stats().RelaysSkipped != 2 {
		t.Errorf("handed on %d writes of a delivered push; stats %+v", len(e.unsent), e.Stats())
	}
}

func manyWrites(prefix, origin string, n int) []replication.Write {
	now := time.Now().UnixNano()
	ws := make([]replication.Write, n)
	for i := range ws {
		ws[i] = put(fmt.Sprintf("%s/%03d", prefix, i), "value", stamp(now+int64(i), origin))
	}
	return ws
}

func waitAllHave(t testing.TB, within time.Duration, nodes []*testNode, ws []replication.Write) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, within, n.id+" has every write", func() bool {
			for _, w := range ws {
				if !n.store.has(w.Key, w.Value.Version) {
					return false
				}
			}
			return true
		})
	}
}

// When the origin's direct push reaches every member (a cluster no bigger than the fan-out),
// receivers store the writes but do not gossip them on: every other node had them already.
func TestDeliveredPushIsNotRelayed(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, noAntiEntropy)
	ws := manyWrites("pushed", "n1", 50)
	writeLocal(t, nodes[0], ws...)
	waitAllHave(t, 5*time.Second, nodes[1:], ws)
	for _, n := range nodes[1:] {
		if s := n.e().Stats(); s.RelaysSkipped != 50 || s.BroadcastsQueued != 0 || s.GossipMerged != 50 {
			t.Errorf("%s stats %+v: want all 50 writes merged, none queued for gossip", n.id, s)
		}
	}
	waitFor(t, 5*time.Second, "n1 counts its 50 writes pushed to both peers and queued for gossip", func() bool {
		s := nodes[0].e().Stats()
		return s.BroadcastsQueued == 50 && s.EagerSent == 100
	})
}

// A push that reaches only some members (the cluster is bigger than the fan-out) is gossiped on
// by its receivers as before. Gossip itself is best effort (the local profile transmits each
// message twice per node, so a node can be missed by all three senders), so anti-entropy runs
// here too: it is what guarantees delivery, and a write it brings is new there and relayed too.
func TestPartialPushIsRelayed(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 4, func(i int, c *Config) {
		c.AntiEntropyInterval = 200 * time.Millisecond
		c.EagerFanout = 1
	})
	ws := manyWrites("partial", "n1", 20)
	writeLocal(t, nodes[0], ws...)
	waitAllHave(t, 10*time.Second, nodes[1:], ws)
	// Every write reached each of the other three nodes once, new there, and each queues it.
	waitFor(t, 5*time.Second, "the receivers queue all 20 writes each for gossip", func() bool {
		relayed := uint64(0)
		for _, n := range nodes[1:] {
			relayed += n.e().Stats().BroadcastsQueued
		}
		return relayed == 3*20
	})
	pushed := uint64(0)
	for _, n := range nodes[1:] {
		s := n.e().Stats()
		pushed += s.GossipMerged
		if s.RelaysSkipped != 0 || s.BroadcastsQueued != s.GossipMerged+s.RepairPulled {
			t.Errorf("%s stats %+v: want every new write relayed, none skipped", n.id, s)
		}
	}
	// The push went to one peer, so at least those 20 writes arrived by push or gossip.
	if pushed < 20 {
		t.Errorf("receivers merged %d writes from push and gossip, want at least the 20 pushed", pushed)
	}
}

// The direct push is best effort: when the packet to a peer is lost, the write still reaches it
// (the other receivers do not relay it) by the origin's queued gossip, or by anti-entropy when
// gossip is lost as well, and under random packet loss everything still converges.
func TestWritesConvergeWhenThePushIsLost(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	lostToN2 := func(to string) bool { return to == "n2" }
	for _, c := range []struct {
		name   string
		adjust func(i int, c *Config)
		check  func(t *testing.T, n2, n3 Stats)
	}{
		{
			name: "the origin's gossip carries it",
			adjust: func(i int, c *Config) {
				noAntiEntropy(i, c)
				if i == 1 {
					c.eagerPushLost = lostToN2
				}
			},
			check: func(t *testing.T, n2, n3 Stats) {
				if n3.RelaysSkipped != 30 || n2.RelaysSkipped != 0 || n2.RepairPulled != 0 {
					t.Errorf("n2 %+v, n3 %+v: want n3 not relaying, n2 served by n1's gossip", n2, n3)
				}
			},
		},
		{
			name: "anti-entropy carries it when gossip is lost too",
			adjust: func(i int, c *Config) {
				c.AntiEntropyInterval = interval
				switch i {
				case 1:
					c.eagerPushLost = lostToN2
				case 2:
					c.DropGossipFrom = func(from string) bool { return from == "n1" }
				}
			},
			check: func(t *testing.T, n2, n3 Stats) {
				if n3.RelaysSkipped != 30 || n2.RepairPulled < 30 {
					t.Errorf("n2 %+v, n3 %+v: want n3 not relaying, n2 repaired by anti-entropy", n2, n3)
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nodes := startCluster(t, 3, c.adjust)
			ws := manyWrites("lost", "n1", 30)
			writeLocal(t, nodes[0], ws...)
			waitAllHave(t, 50*interval, nodes[1:], ws)
			c.check(t, nodes[1].e().Stats(), nodes[2].e().Stats())
		})
	}
	t.Run("random loss", func(t *testing.T) {
		t.Parallel()
		injectors := make([]*fault.Injector, 3)
		nodes := startCluster(t, 3, func(i int, c *Config) {
			c.AntiEntropyInterval = interval
			injectors[i-1] = fault.New(true)
			c.Faults = injectors[i-1]
		})
		for _, inj := range injectors {
			if err := inj.Set(fault.Faults{Loss: 0.3}); err != nil {
				t.Fatal(err)
			}
		}
		var all []replication.Write
		for round := range 5 {
			for _, n := range nodes {
				ws := manyWrites(fmt.Sprintf("loss/%d/%s", round, n.id), n.id, 10)
				writeLocal(t, n, ws...)
				all = append(all, ws...)
			}
		}
		waitAllHave(t, 30*time.Second, nodes, all)
	})
}

// BenchmarkGossipWrites measures what gossip costs per write on 3 nodes (the node's store
// replaced by memory): writes go out from n1 in groups of 16, as a group commit hands them over,
// each group once every node has the one before. sends/write counts the messages memberlist took
// from the transmit queues of all nodes, relays/write the writes receivers queued again,
// dropped/write the messages dropped from full queues (gossip cannot transmit as fast as this).
func BenchmarkGossipWrites(b *testing.B) {
	nodes := startCluster(b, 3, noAntiEntropy)
	const group = 16
	b.ReportAllocs()
	for i := 0; i < b.N; i += group {
		ws := manyWrites(fmt.Sprintf("bench/%d", i), "n1", min(group, b.N-i))
		writeLocal(b, nodes[0], ws...)
		waitAllHave(b, time.Minute, nodes[1:], ws)
	}
	b.StopTimer()
	waitFor(b, time.Minute, "every transmit queue drains", func() bool {
		for _, n := range nodes {
			if n.e().Stats().QueueDepth > 0 {
				return false
			}
		}
		return true
	})
	var sends, relays, dropped uint64
	for _, n := range nodes {
		s := n.e().Stats()
		sends += s.BroadcastsSent
		dropped += s.BroadcastsDropped
		if n != nodes[0] {
			relays += s.BroadcastsQueued
		}
	}
	b.ReportMetric(float64(sends)/float64(b.N), "sends/write")
	b.ReportMetric(float64(relays)/float64(b.N), "relays/write")
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/write")
}
