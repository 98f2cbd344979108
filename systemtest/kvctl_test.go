package systemtest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kvctl runs the built kvctl and returns stdout, stderr and whether it exited 0.
func kvctl(t *testing.T, args ...string) (string, string, bool) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "kvctl"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("kvctl %v: %v", args, err)
		}
	}
	return out.String(), errb.String(), err == nil
}

// localPortsFree reports whether the fixed ports of `kvctl cluster up --nodes n` are free.
func localPortsFree(n int) error {
	for i := 1; i <= n; i++ {
		for _, base := range []int{7000, 7100, 7200} {
			addr := fmt.Sprintf("127.0.0.1:%d", base+i)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("%s is taken (a local cluster running?)", addr)
			}
			ln.Close()
		}
	}
	return nil
}

// The README's tour of partitions, through kvctl on a `kvctl cluster up` cluster: cutting n1 off
// makes its strong reads fail while its eventual reads answer; heal undoes it.
func TestKvctlClusterPartitionAndHeal(t *testing.T) {
	needBinaries(t)
	if err := localPortsFree(3); err != nil {
		t.Skipf("skipped: kvctl cluster up needs ports 7001-7003, 7101-7103, 7201-7203: %v", err)
	}
	dir := t.TempDir()
	if out, errOut, ok := kvctl(t, "cluster", "up", "--nodes", "3", "--data-dir", dir); !ok {
		t.Fatalf("cluster up failed:\n%s\n%s", out, errOut)
	}
	t.Cleanup(func() { kvctl(t, "cluster", "down", "--data-dir", dir) })

	if _, errOut, ok := kvctl(t, "put", "k", "v", "--consistency", "strong"); !ok {
		t.Fatalf("put: %s", errOut)
	}
	// A strong read on n1 makes sure n1 has applied the write before it is cut off (a follower
	// may lag the leader's acknowledgement by a few milliseconds).
	if out, errOut, ok := kvctl(t, "get", "k", "--consistency", "strong", "--endpoints", "127.0.0.1:7001"); !ok || out != "v" {
		t.Fatalf("strong read on n1 before the partition: %q %q", out, errOut)
	}
	if out, errOut, ok := kvctl(t, "cluster", "partition", "n1", "--data-dir", dir); !ok || !strings.Contains(out, "n1 cut off from n2, n3") {
		t.Fatalf("partition: %q %q", out, errOut)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, errOut, ok := kvctl(t, "get", "k", "--consistency", "strong", "--endpoints", "127.0.0.1:7001", "--timeout", "8s")
		if !ok {
			t.Logf("strong read on the partitioned n1 fails: %s", strings.TrimSpace(errOut))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("strong reads on n1 still succeed 20s after cutting it off")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, errOut, ok := kvctl(t, "get", "k", "--consistency", "eventual", "--endpoints", "127.0.0.1:7001"); !ok || out != "v" {
		t.Fatalf("eventual read on the partitioned n1: %q %q", out, errOut)
	}
	if out, errOut, ok := kvctl(t, "cluster", "heal", "--data-dir", dir); !ok {
		t.Fatalf("heal: %q %q", out, errOut)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, _, ok := kvctl(t, "get", "k", "--consistency", "strong", "--endpoints", "127.0.0.1:7001", "--timeout", "5s")
		if ok && out == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("strong reads on n1 did not come back within 20s of the heal")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
