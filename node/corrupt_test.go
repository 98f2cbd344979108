package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dialkv/dialkv/replication/store"
)

// A purge horizon stored in the committed layer that does not decode refuses the start, naming
// the file and what to do. Taken as zero (as it was), the node's clock did not observe it, and
// the node took eventual writes below it that every other replica refuses. Doing what the
// error says (moving the committed layer aside) brings the node back with its writes.
func TestStartRefusesACorruptPurgeHorizon(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, cfg *Config) { cfg.disableCommitter = true })
	if r := do(t, "PUT", tc.nodes[0], "/v1/kv/k?consistency=strong", "acked"); r.status != 200 {
		t.Fatalf("strong put: %d %s", r.status, r.body)
	}
	cfg := tc.stopNode(0)
	db, err := bolt.Open(cfg.statePath(), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("committed")).Bucket([]byte("meta")).Put([]byte("purge_horizon"), []byte{0, 0, 0, 1})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	_, err = tryStart(t, cfg)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), cfg.statePath()) || !strings.Contains(err.Error(), "purge_horizon") {
		t.Fatalf("New: %v; want %v naming %s and the key", err, store.ErrCorrupt, cfg.statePath())
	}
	t.Logf("refused: %v", err)
	if err := os.Rename(cfg.statePath(), cfg.statePath()+".corrupt"); err != nil {
		t.Fatal(err)
	}
	n, err := tryStart(t, cfg)
	if err != nil {
		t.Fatalf("New after moving the corrupt committed layer aside: %v", err)
	}
	waitStrongRead(t, n, "k", "acked")
}

// flipPageHeaders damages the bbolt file at path: the header of every page after the two meta
// pages, as bit rot or a bad sector would. bbolt panics on the first it meets.
func flipPageHeaders(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	for off := 2 * ps; off+8 <= len(data); off += ps {
		for i := off; i < off+8; i++ {
			data[i] ^= 0xa5
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A damaged bbolt file made the node die at start with bbolt's panic trace, which named no file.
// New refuses instead, naming the file and saying what to do: for the files nothing else can
// bring back, as for a lost one (ErrDataLost).
func TestStartRefusesADamagedFile(t *testing.T) {
	for _, file := range []string{"raft.db", "state.tentative.db", "state.db"} {
		t.Run(file, func(t *testing.T) {
			tc := startCluster(t, 1, func(_ int, cfg *Config) { cfg.disableCommitter = true })
			for _, level := range []string{"strong", "eventual"} {
				if r := do(t, "PUT", tc.nodes[0], "/v1/kv/"+level+"?consistency="+level, "acked"); r.status != 200 {
					t.Fatalf("%s put: %d %s", level, r.status, r.body)
				}
			}
			cfg := tc.stopNode(0)
			path := filepath.Join(cfg.DataDir, file)
			flipPageHeaders(t, path)
			_, err := tryStart(t, cfg)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "damaged") && !strings.Contains(err.Error(), "aside") {
				t.Fatalf("New: %v; want a refusal naming %s and what to do", err, path)
			}
			if file != "state.db" && !errors.Is(err, ErrDataLost) {
				t.Errorf("New: %v; want %v", err, ErrDataLost)
			}
			if file == "state.db" && !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("New: %v; want %v", err, store.ErrCorrupt)
			}
			t.Logf("refused: %v", err)
		})
	}
}
