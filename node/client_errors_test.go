package node

import (
	"context"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/replication/store"
)

// The Go client tells a node's error answers apart by their code, also for the longest keys,
// whose error messages quote the key with every byte escaped.
func TestClientErrorKindsForLongKeys(t *testing.T) {
	tc := startCluster(t, 1)
	cfg := client.DefaultConfig()
	cfg.Endpoints = []string{tc.nodes[0].HTTPAddr()}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{
		strings.Repeat("<", store.MaxKeySize),    // each byte 6 in the JSON of its %q
		strings.Repeat("\x01", store.MaxKeySize), // each byte 5: \\x01
	} {
		if _, err := cl.Put(ctx, key, []byte("v"), client.PutOptions{IfAbsent: true}); err != nil {
			t.Fatalf("first create of a %d-byte key: %v", len(key), err)
		}
		if _, err := cl.Put(ctx, key, []byte("v"), client.PutOptions{IfAbsent: true}); !client.IsConflict(err) {
			t.Errorf("second create of a %d-byte key: %.200v, want a conflict", len(key), err)
		}
		missing := key[:len(key)-1]
		if _, _, err := cl.Get(ctx, missing, client.GetOptions{}); !client.IsNotFound(err) {
			t.Errorf("read of a missing %d-byte key: %.200v, want not found", len(missing), err)
		}
		if _, err := cl.Delete(ctx, missing, client.DeleteOptions{}); !client.IsNotFound(err) {
			t.Errorf("delete of a missing %d-byte key: %.200v, want not found", len(missing), err)
		}
	}
}
