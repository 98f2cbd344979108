package systemtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

// A node cut off from the quorum takes eventual writes it cannot commit; it is SIGKILLed with
// them pending, restarted, and they commit: the tentative layer was durable before each ack.
func TestSIGKILLedNodeCommitsItsPendingEventualWrites(t *testing.T) {
	c := startCluster(t, 3, "--gossip-profile", "local")
	keeper := c.procs[2]
	for _, p := range c.procs[:2] {
		c.kill(p)
	}
	cl := c.client(keeper.http)
	ctx, cancel := ctxTimeout(60 * time.Second)
	defer cancel()
	const writes = 20
	for i := 0; i < writes; i++ {
		meta, err := cl.Put(ctx, fmt.Sprintf("pending-%d", i), []byte(fmt.Sprint(i)), client.PutOptions{Consistency: "eventual"})
		if err != nil {
			t.Fatalf("eventual write %d on the isolated node: %v", i, err)
		}
		if meta.State != client.StateTentative {
			t.Fatalf("eventual write answered state %q, want tentative", meta.State)
		}
	}
	if _, _, err := cl.Get(ctx, "pending-0", client.GetOptions{Consistency: "strong"}); err == nil {
		t.Fatal("a strong read succeeded without a quorum")
	}
	if v, _, err := cl.Get(ctx, "pending-0", client.GetOptions{Consistency: "eventual"}); err != nil || string(v) != "0" {
		t.Fatalf("eventual read on the isolated node: %q %v", v, err)
	}

	c.kill(keeper)
	for _, p := range c.procs {
		c.start(p)
	}
	c.waitLeader(20 * time.Second)
	all := c.client()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; i < writes; i++ {
		key := fmt.Sprintf("pending-%d", i)
		for {
			v, meta, err := all.Get(ctx, key, client.GetOptions{Consistency: "strong"})
			if err == nil && string(v) == fmt.Sprint(i) && meta.State == client.StateCommitted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not committed 15s after restart: %q %v", key, v, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
