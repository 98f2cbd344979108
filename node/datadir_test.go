package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/replication/store"
)

// tryStart starts a node from cfg on a data directory the test changed, at cfg's HTTP address.
// It returns New's error; when New accepts the directory, the node serves until the test ends.
func tryStart(t *testing.T, cfg Config) (*Node, error) {
	t.Helper()
	n, cancel, done, err := tryStartNode(cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { cancel(); <-done })
	return n, nil
}

// waitStrongRead waits until a strong read of key on n answers want (a started node catching up).
func waitStrongRead(t *testing.T, n *Node, key, want string) {
	t.Helper()
	waitUntil(t, "a strong read of "+key+" to answer "+want, 20*time.Second, func() bool {
		r := do(t, "GET", n, "/v1/kv/"+key+"?consistency=strong", "")
		return r.status == 200 && r.body == want
	})
}

// lossCase is a way a file goes missing from a data directory.
type lossCase struct {
	name string
	lose func(path string) error
}

var lossCases = []lossCase{
	{"zero-length", func(path string) error { return os.Truncate(path, 0) }},
	{"missing", os.Remove},
}

// wantRefused checks that New refused a data directory with ErrDataLost, naming the file.
func wantRefused(t *testing.T, err error, file string) {
	t.Helper()
	if !errors.Is(err, ErrDataLost) || !strings.Contains(err.Error(), file) {
		t.Fatalf("New: %v; want %v naming %s", err, ErrDataLost, file)
	}
	t.Logf("refused: %v", err)
}

// The tentative layer holds the eventual writes a node acknowledged and has not committed yet
// (DESIGN.md, guarantee 6). bbolt takes a zero-length file for a new database, and Open creates a
// missing one: a node that started on either would serve and commit none of them, silently.
func TestStartRefusesALostTentativeLayer(t *testing.T) {
	for _, c := range lossCases {
		t.Run(c.name, func(t *testing.T) {
			tc := startCluster(t, 1, func(_ int, cfg *Config) { cfg.disableCommitter = true })
			if r := do(t, "PUT", tc.nodes[0], "/v1/kv/k?consistency=eventual", "acked"); r.status != 200 {
				t.Fatalf("eventual put: %d %s", r.status, r.body)
			}
			cfg := tc.stopNode(0)
			path := store.TentativePath(cfg.statePath())
			if err := c.lose(path); err != nil {
				t.Fatal(err)
			}
			n, err := tryStart(t, cfg)
			if err == nil {
				r := do(t, "GET", n, "/v1/kv/k?consistency=eventual", "")
				t.Fatalf("started on a data dir whose tentative layer is %s; the acknowledged eventual write reads %d %q", c.name, r.status, r.body)
			}
			wantRefused(t, err, path)
		})
	}
}

// raft.db holds the log and the vote. A node that starts without it, next to a committed layer
// that applied the log up to some index, has no Raft state: given its bootstrap list it starts a
// new log at index 1, and skips every entry at or below the old applied index as applied
// already, so the strong writes it takes never complete. Without the committed layer too it
// would vote and acknowledge as if it had never seen the entries it once acknowledged.
func TestStartRefusesALostRaftLog(t *testing.T) {
	cases := append([]lossCase{}, lossCases...)
	cases = append(cases, lossCase{"missing with the committed layer", func(path string) error {
		if err := os.Remove(path); err != nil {
			return err
		}
		return os.Remove(filepath.Join(filepath.Dir(path), "state.db"))
	}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := startCluster(t, 1)
			for _, k := range []string{"a", "b", "c"} {
				if r := do(t, "PUT", tc.nodes[0], "/v1/kv/"+k+"?consistency=strong", "acked"); r.status != 200 {
					t.Fatalf("strong put: %d %s", r.status, r.body)
				}
			}
			cfg := tc.stopNode(0)
			path := filepath.Join(cfg.DataDir, "raft.db")
			if err := c.lose(path); err != nil {
				t.Fatal(err)
			}
			n, err := tryStart(t, cfg)
			if err == nil {
				r := do(t, "PUT", n, "/v1/kv/after?consistency=strong", "x")
				g := do(t, "GET", n, "/v1/kv/a?consistency=strong", "")
				t.Fatalf("started on a data dir whose raft.db is %s: a strong put answers %d %s; the acknowledged write of a reads %d %q", c.name, r.status, r.body, g.status, g.body)
			}
			wantRefused(t, err, path)
		})
	}
}

// The committed layer is a function of the Raft snapshot and log (the store sets it aside itself
// after a machine crash): a node that lost it, with raft.db kept, rebuilds it and loses nothing,
// also when the log behind the newest snapshot was compacted. So it starts.
func TestStartRebuildsALostCommittedLayer(t *testing.T) {
	for _, c := range lossCases {
		t.Run(c.name, func(t *testing.T) {
			tc := startCluster(t, 1, func(_ int, cfg *Config) {
				cfg.disableCommitter = true
				cfg.Raft.TrailingLogs = 1
			})
			n := tc.nodes[0]
			for _, k := range []string{"a", "b"} {
				if r := do(t, "PUT", n, "/v1/kv/"+k+"?consistency=strong", "acked"); r.status != 200 {
					t.Fatalf("strong put: %d %s", r.status, r.body)
				}
			}
			if err := n.raft.Snapshot(); err != nil {
				t.Fatal(err)
			}
			if r := do(t, "PUT", n, "/v1/kv/c?consistency=strong", "acked"); r.status != 200 {
				t.Fatalf("strong put: %d %s", r.status, r.body)
			}
			if r := do(t, "PUT", n, "/v1/kv/e?consistency=eventual", "acked"); r.status != 200 {
				t.Fatalf("eventual put: %d %s", r.status, r.body)
			}
			cfg := tc.stopNode(0)
			if err := c.lose(cfg.statePath()); err != nil {
				t.Fatal(err)
			}
			n, err := tryStart(t, cfg)
			if err != nil {
				t.Fatalf("New on a data dir whose committed layer is %s: %v", c.name, err)
			}
			for _, k := range []string{"a", "b", "c"} {
				waitStrongRead(t, n, k, "acked")
			}
			if r := do(t, "GET", n, "/v1/kv/e?consistency=eventual", ""); r.status != 200 || r.body != "acked" {
				t.Fatalf("the tentative write reads %d %q", r.status, r.body)
			}
		})
	}
}

// What a first start leaves behind when it stops (or the machine goes down) part way is not a
// loss: no write was acknowledged yet. New writes the joining marker before anything else, so
// each of these directories holds it. A node must start on each, and on its own data directory
// after an ordinary restart.
func TestStartAcceptsANewOrRestartedDataDir(t *testing.T) {
	t.Run("restart", func(t *testing.T) {
		tc := startCluster(t, 1)
		if r := do(t, "PUT", tc.nodes[0], "/v1/kv/k?consistency=strong", "acked"); r.status != 200 {
			t.Fatalf("strong put: %d %s", r.status, r.body)
		}
		cfg := tc.stopNode(0)
		if _, err := os.Stat(filepath.Join(cfg.DataDir, joiningMarker)); err == nil {
			t.Fatal("the joining marker is still there after the node caught up")
		}
		n, err := tryStart(t, cfg)
		if err != nil {
			t.Fatalf("New on the node's own data dir: %v", err)
		}
		waitStrongRead(t, n, "k", "acked")
	})
	// Each step of a first start, in order; a partial directory holds the first i of them.
	steps := []struct {
		name string
		make func(cfg Config) error
	}{
		{"joining marker", func(cfg Config) error {
			return os.WriteFile(filepath.Join(cfg.DataDir, joiningMarker), joiningNote, 0o600)
		}},
		{"zero-length tentative layer", func(cfg Config) error {
			return os.WriteFile(store.TentativePath(cfg.statePath()), nil, 0o600)
		}},
		{"store opened", func(cfg Config) error {
			st, err := store.Open(cfg.statePath(), store.DefaultOptions())
			if err != nil {
				return err
			}
			return st.Close()
		}},
		{"zero-length raft.db", func(cfg Config) error {
			return os.WriteFile(filepath.Join(cfg.DataDir, "raft.db"), nil, 0o600)
		}},
	}
	for i := 0; i <= len(steps); i++ {
		name := "empty"
		if i > 0 {
			name = "up to " + steps[i-1].name
		}
		t.Run(name, func(t *testing.T) {
			cfg := newDataDirConfig(t)
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, s := range steps[:i] {
				if err := s.make(cfg); err != nil {
					t.Fatal(err)
				}
			}
			n, err := tryStart(t, cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			waitUntil(t, "a strong write", 20*time.Second, func() bool {
				return do(t, "PUT", n, "/v1/kv/k?consistency=strong", "x").status == 200
			})
		})
	}
}

// A first start writes the joining marker before the store's mark: a start that stopped between
// the two would otherwise leave a directory that checkDataDir takes for a member's that lost its
// raft.db. Here the store cannot open (its tentative layer's path is taken by a directory), which
// stops the start right there.
func TestFirstStartMarksJoiningBeforeTheStore(t *testing.T) {
	cfg := newDataDirConfig(t)
	if err := os.MkdirAll(store.TentativePath(cfg.statePath()), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil {
		t.Fatal("New opened a store whose tentative layer is a directory")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, joiningMarker)); err != nil {
		t.Fatalf("the start stopped at the store without the joining marker: %v", err)
	}
}

// newDataDirConfig is the config of a node that bootstraps a cluster of one, on a data directory
// that is not there (the node ran, and its directory was removed).
func newDataDirConfig(t *testing.T) Config {
	tc := startCluster(t, 1)
	cfg := tc.stopNode(0)
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	return cfg
}
