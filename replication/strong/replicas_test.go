package strong

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// replicaLog is a random log of every kind of entry the state machine sees, built against a
// reference replica so that its conditional writes match the key's version some of the time.
type replicaLog struct {
	r       *rand.Rand
	ref     *fsm
	entries []*raft.Log
	results []interface{} // the reference replica's result per entry
}

var (
	replicaKeys    = []string{"a", "b", "c", "d", "e", "f"}
	replicaMembers = []string{"n1", "n2", "n3"}
)

func (l *replicaLog) stamp() consistency.Version {
	v := consistency.Version{Wall: int64(1 + l.r.Intn(2000)), Logical: uint32(l.r.Intn(3)), Node: replicaMembers[l.r.Intn(3)]}
	if l.r.Intn(4) == 0 {
		v.Node += "/s" // a leader's strong space
	}
	if l.r.Intn(20) == 0 {
		v.Logical = math.MaxUint32 // the successor carries into the wall
	}
	return v
}

func (l *replicaLog) key() string { return replicaKeys[l.r.Intn(len(replicaKeys))] }

// strongWrite is a put or delete, unconditional, conditional on the key's current version (or
// on a wrong one, or on absence), or create-if-absent.
func (l *replicaLog) strongWrite() replication.Command {
	c := replication.Command{Type: replication.CmdPut, Key: l.key(), Value: []byte(fmt.Sprint(l.r.Intn(100))), Stamp: l.stamp()}
	if l.r.Intn(4) == 0 {
		c.Type, c.Value = replication.CmdDelete, nil
	}
	switch l.r.Intn(6) {
	case 0:
		c.Cond = replication.CondIfAbsent
	case 1, 2:
		c.Cond = replication.CondIfVersion
		if cur, ok, _ := l.ref.store.Get(c.Key); ok && l.r.Intn(3) > 0 {
			c.IfVersion = cur.Version
		} else if l.r.Intn(2) == 0 {
			c.IfVersion = l.stamp()
		}
	}
	return c
}

func (l *replicaLog) eventualBatch() replication.Command {
	c := replication.Command{Type: replication.CmdEventualBatch, Reporter: replicaMembers[l.r.Intn(3)]}
	if l.r.Intn(3) > 0 {
		c.Watermark = l.stamp()
	}
	for range l.r.Intn(5) {
		w := replication.Write{Key: l.key(), Value: consistency.Value{Version: l.stamp(), Data: []byte(fmt.Sprint(l.r.Intn(100)))}}
		if l.r.Intn(4) == 0 {
			w.Value.Tombstone, w.Value.Data = true, nil
		}
		c.Writes = append(c.Writes, w)
	}
	return c
}

func (l *replicaLog) command() replication.Command {
	switch n := l.r.Intn(20); {
	case n < 8:
		return l.strongWrite()
	case n < 12:
		return l.eventualBatch()
	case n < 14:
		return replication.Command{Type: replication.CmdPurge, Stamp: l.stamp()}
	case n == 14:
		id := replicaMembers[l.r.Intn(3)]
		return replication.Command{Type: replication.CmdRegister, Member: replication.Member{ID: id, RaftAddr: id + ":7100"}}
	case n == 15:
		return replication.Command{Type: replication.CmdRemove, Member: replication.Member{ID: replicaMembers[l.r.Intn(3)]}}
	default:
		b := replication.Command{Type: replication.CmdBatch}
		for range 1 + l.r.Intn(4) {
			b.Batch = append(b.Batch, l.strongWrite())
		}
		return b
	}
}

// next appends one entry (a command, or one the state machine only skips) and applies it to
// the reference replica.
func (l *replicaLog) next() {
	e := &raft.Log{Index: uint64(len(l.entries) + 1), Term: 1}
	switch l.r.Intn(15) {
	case 0:
		e.Type = raft.LogConfiguration
	case 1:
		e.Type = raft.LogNoop
	case 2:
		e.Type = raft.LogBarrier
	default:
		c := l.command()
		e.Type, e.Data = raft.LogCommand, c.Encode()
	}
	l.entries = append(l.entries, e)
	l.results = append(l.results, l.ref.ApplyBatch([]*raft.Log{e})[0])
}

func openReplica(t *testing.T, path string, opts store.Options, clock *consistency.Clock) *fsm {
	t.Helper()
	opts.OpenTimeout, opts.InitialMmapSize = store.DefaultOptions().OpenTimeout, 1<<20
	st, err := store.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fsm{store: st, clock: clock, logger: slog.New(slog.DiscardHandler)}
}

func snapshotOf(t *testing.T, f *fsm) []byte {
	t.Helper()
	s, err := f.store.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func restoreInto(t *testing.T, f *fsm, snapshot []byte) {
	t.Helper()
	if err := f.Restore(io.NopCloser(bytes.NewReader(snapshot))); err != nil {
		t.Fatal(err)
	}
}

// sameResult reports whether two ApplyBatch results are equal, errors compared by text.
func sameResult(a, b interface{}) bool { return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b) }

// The committed layer is a function of the log alone (DESIGN.md): replicas that differ in
// everything local (store options, clock, tentative layer, how raft batched the entries,
// restarts, a snapshot installed over other state) end with byte-identical snapshots, and
// answer every entry they apply as the reference replica did. A snapshot restored anywhere
// reproduces the state byte for byte.
func TestReplicasWithDifferentLocalStateApplyOneLogAlike(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			r := rand.New(rand.NewSource(seed))
			dir := t.TempDir()
			l := &replicaLog{r: r, ref: openReplica(t, filepath.Join(dir, "ref.db"), store.Options{}, consistency.NewClock("n1", nil))}
			for range 600 {
				l.next()
			}
			want := snapshotOf(t, l.ref)

			// A replica whose clock runs an hour ahead, with a tiny read cache, another node
			// id, eventual writes of its own in its tentative layer, random batches, a restart
			// that replays entries it already holds, and a snapshot install half way.
			skewed := consistency.NewClock("n2", func() time.Time { return time.Now().Add(time.Hour) })
			path := filepath.Join(dir, "b.db")
			opts := store.Options{ReadCacheBytes: 64, NodeID: "n2"}
			b := openReplica(t, path, opts, skewed)
			check := func(f *fsm, from int, results []interface{}) {
				t.Helper()
				for i, got := range results {
					if e := l.entries[from+i]; e.Index > f.store.AppliedIndex() {
						t.Fatalf("entry %d: applied index %d", e.Index, f.store.AppliedIndex())
					}
					if !sameResult(got, l.results[from+i]) {
						t.Fatalf("entry %d answered %+v on a replica, %+v on the reference", from+i+1, got, l.results[from+i])
					}
				}
			}
			installAt := 200 + r.Intn(200)
			restartAt := 100 + r.Intn(100)
			for start := 0; start < len(l.entries); {
				if r.Intn(3) == 0 {
					var ws []replication.Write
					for range 1 + r.Intn(4) {
						ws = append(ws, replication.Write{Key: l.key(), Value: consistency.Value{Version: skewed.Now(), Data: []byte("mine"), Tombstone: r.Intn(5) == 0}})
					}
					if _, err := b.store.MergeTentative(ws); err != nil {
						t.Fatal(err)
					}
				}
				end := min(start+1+r.Intn(40), len(l.entries))
				switch {
				case start >= restartAt && restartAt >= 0:
					restartAt = -1
					if err := b.store.Close(); err != nil {
						t.Fatal(err)
					}
					b = openReplica(t, path, opts, skewed)
					// Raft replays from its last snapshot: entries the state holds come again.
					from := max(0, start-1-r.Intn(30))
					for _, res := range b.ApplyBatch(l.entries[from:start]) {
						if res != nil {
							t.Fatalf("a replayed entry was applied again: %+v", res)
						}
					}
				case start >= installAt && installAt >= 0:
					installAt = -1
					// Take the reference's state at start from a replica that applied exactly
					// that much, and install it over b's.
					c := openReplica(t, filepath.Join(dir, "c.db"), store.Options{ReadCacheBytes: -1}, consistency.NewClock("n3", nil))
					c.ApplyBatch(l.entries[:start+1])
					restoreInto(t, b, snapshotOf(t, c))
					start++
					continue
				}
				check(b, start, b.ApplyBatch(l.entries[start:end]))
				start = end
			}
			if got := snapshotOf(t, b); !bytes.Equal(got, want) {
				t.Fatalf("the replica's state differs from the reference's after the same log (%d vs %d bytes)", len(got), len(want))
			}

			// A state restored over another (never merged) and snapshotted again is the same.
			d := openReplica(t, filepath.Join(dir, "d.db"), store.Options{}, consistency.NewClock("n3", nil))
			other := &replicaLog{r: rand.New(rand.NewSource(seed + 100)), ref: d}
			for range 300 {
				other.next()
			}
			restoreInto(t, d, want)
			if got := snapshotOf(t, d); !bytes.Equal(got, want) {
				t.Fatal("a snapshot restored over other state does not reproduce the state")
			}
		})
	}
}
