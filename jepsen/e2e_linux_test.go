package jepsen

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCleanStale makes a namespace that looks like a killed run's and expects CleanStale to
// remove it (and to leave a live run's alone). Root and Linux only.
func TestCleanStale(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	if err := NetnsAvailable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	dead := "dkv-" + randomID() + "-hub"
	if out, err := exec.Command("ip", "netns", "add", dead).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", dead).Run() })
	liveID := randomID()
	lock, err := lockFile(filepath.Join(lockDir(), "dialkv-jepsen-"+liveID+".lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { lock.Close(); os.Remove(lock.Name()) }()
	live := "dkv-" + liveID + "-hub"
	if out, err := exec.Command("ip", "netns", "add", live).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", live).Run() })
	removed, err := CleanStale(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(removed, ",")
	if !strings.Contains(joined, dead) {
		t.Errorf("stale %s not removed (removed %v)", dead, removed)
	}
	if strings.Contains(joined, live) {
		t.Errorf("a live run's %s was removed", live)
	}
}
