package strong

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication/store"
)

// crashWithTwoSnapshots writes k00..k40 through a 3-node cluster, has a follower take a
// snapshot after k19 and another after k39, and stops it as a machine crash would (its
// committed layer is rebuilt from the snapshots and log at the next start). It returns the
// follower, cut off from the others, and its snapshots, newest first.
func crashWithTwoSnapshots(t *testing.T, tc *testCluster) (*testNode, []*raft.SnapshotMeta) {
	t.Helper()
	var victim *testNode
	for i := 0; i < 41; i++ {
		tc.propose(fmt.Sprintf("k%02d", i), fmt.Sprint(i))
		if i != 19 && i != 39 {
			continue
		}
		for _, nd := range tc.nodes {
			waitFor(t, nd.id+" to apply every write", 10*time.Second, func() bool { return valueOn(nd, fmt.Sprintf("k%02d", i)) == fmt.Sprint(i) })
			if nd != tc.leader() {
				victim = nd
			}
		}
		if err := victim.eng.Snapshot(); err != nil {
			t.Fatalf("snapshot on %s: %v", victim.id, err)
		}
	}
	waitFor(t, victim.id+" to apply k40", 10*time.Second, func() bool { return valueOn(victim, "k40") == "40" })
	tc.stopTornAndCutOff(victim)
	snaps, err := raft.NewFileSnapshotStore(victim.dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	list, err := snaps.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("snapshots of %s: %v, %v; want two", victim.id, list, err)
	}
	return victim, list
}

// cutSnapshot truncates the state file of the snapshot id in dir to half its size.
func cutSnapshot(t *testing.T, dir, id string) string {
	t.Helper()
	path := filepath.Join(dir, "snapshots", id, "state.bin")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()/2); err != nil {
		t.Fatal(err)
	}
	return path
}

// A node that rebuilds its committed layer from its newest snapshot and finds that snapshot
// cut short falls back to the older one and applies the entries between the two from its log
// (raft takes the newest snapshot's index as applied, so it would never apply them). It
// refused to start before, with raft's bare "CRC mismatch".
func TestRebuildFallsBackToAnOlderSnapshotAndTheLog(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) { c.TrailingLogs = 1000 })
	victim, list := crashWithTwoSnapshots(t, tc)
	cutSnapshot(t, victim.dir, list[0].ID)
	tc.start(victim, nil)
	if !victim.store.Torn {
		t.Fatal("the store did not treat the file as torn: the test did not exercise the rebuild")
	}
	if got := victim.store.AppliedIndex(); got < list[0].Index {
		t.Errorf("applied index %d after the start, below the newest snapshot's %d", got, list[0].Index)
	}
	// Cut off, so all of this comes from its own disk: k00..k19 from the older snapshot,
	// k20..k39 from the log.
	for i := 0; i < 40; i++ {
		if got := valueOn(victim, fmt.Sprintf("k%02d", i)); got != fmt.Sprint(i) {
			t.Errorf("k%02d = %q right after the restart, want %d", i, got, i)
		}
	}
	tc.connectAll()
	waitFor(t, "the log after the newest snapshot to be replayed", 10*time.Second, func() bool { return valueOn(victim, "k40") == "40" })
}

// With no snapshot that restores, and a log compacted past them, the start fails, naming the
// snapshots and saying what to do, and applies nothing. (With the whole log, it replays it.)
func TestRebuildWithoutAGoodSnapshotFailsNamingIt(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) { c.TrailingLogs = 5 })
	victim, list := crashWithTwoSnapshots(t, tc)
	var cut []string
	for _, meta := range list {
		cut = append(cut, cutSnapshot(t, victim.dir, meta.ID))
	}
	st, err := store.Open(filepath.Join(victim.dir, "state.db"), store.Options{OpenTimeout: time.Second, InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := fastConfig()
	cfg.NodeID, cfg.Dir, cfg.Transport = victim.id, victim.dir, victim.trans
	eng, err := Open(cfg, st, consistency.NewClock(victim.id, nil))
	if err == nil {
		eng.Shutdown()
		t.Fatal("Open rebuilt the committed layer with no snapshot that restores")
	}
	for _, path := range cut {
		if !strings.Contains(err.Error(), filepath.Dir(path)) {
			t.Errorf("Open: %v; does not name %s", err, filepath.Dir(path))
		}
	}
	if !strings.Contains(err.Error(), "replace the node") {
		t.Errorf("Open: %v; does not say what to do", err)
	}
	if st.AppliedIndex() != 0 {
		t.Errorf("applied index %d after the refusal", st.AppliedIndex())
	}
	t.Logf("refused: %v", err)
}
