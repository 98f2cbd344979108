package systemtest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/internal/freeport"
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

// localPortsFree reports whether the ports of `kvctl cluster up --nodes n --base-port base` are
// free: node i's HTTP base+i and Raft base+100+i over TCP, its gossip base+200+i over TCP and UDP.
func localPortsFree(base, n int) error {
	for i := 1; i <= n; i++ {
		for _, port := range []int{base + i, base + 100 + i, base + 200 + i} {
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("%s is taken", addr)
			}
			ln.Close()
			if port > base+200 {
				pc, err := net.ListenPacket("udp", addr)
				if err != nil {
					return fmt.Errorf("%s (UDP) is taken", addr)
				}
				pc.Close()
			}
		}
	}
	return nil
}

// freeBasePort finds a --base-port for an n-node `kvctl cluster up` whose three blocks are free,
// away from the default 7001-7203 (a developer's own local cluster may hold them, and the test
// would otherwise have to skip). Candidates come from freeport, so this process hands node 1's
// HTTP port to no other test.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	var last error
	for range 50 {
		addr, err := freeport.Loopback()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		base := port - 1
		if base+200+n > 65535 {
			continue
		}
		if last = localPortsFree(base, n); last == nil {
			return base
		}
	}
	t.Fatalf("no base port with free blocks for %d nodes in 50 tries (last: %v)", n, last)
	return 0
}

// The README's tour of partitions, through kvctl on a `kvctl cluster up` cluster: cutting n1 off
// makes its strong reads fail while its eventual reads answer; heal undoes it. The cluster is on
// free ports (--base-port), so that the test runs beside a local cluster on the default ones,
// and the cluster commands find them through cluster.json alone.
func TestKvctlClusterPartitionAndHeal(t *testing.T) {
	needBinaries(t)
	base := freeBasePort(t, 3)
	n1 := fmt.Sprintf("127.0.0.1:%d", base+1)
	all := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", base+1, base+2, base+3)
	dir := t.TempDir()
	out, errOut, ok := kvctl(t, "cluster", "up", "--nodes", "3", "--base-port", strconv.Itoa(base), "--data-dir", dir)
	if !ok {
		t.Fatalf("cluster up failed:\n%s\n%s", out, errOut)
	}
	t.Cleanup(func() { kvctl(t, "cluster", "down", "--data-dir", dir) })
	if !strings.Contains(out, "export KV_ENDPOINTS="+all+"\n") {
		t.Errorf("cluster up --base-port %d printed endpoints other than %s:\n%s", base, all, out)
	}
	if out, errOut, ok := kvctl(t, "cluster", "status", "--data-dir", dir); !ok || !strings.Contains(out, n1) {
		t.Errorf("cluster status does not show n1 on %s: %q %q", n1, out, errOut)
	}

	// --endpoints always: without it kvctl would fall back to $KV_ENDPOINTS or ./data, neither
	// this test's cluster.
	if _, errOut, ok := kvctl(t, "put", "k", "v", "--consistency", "strong", "--endpoints", all); !ok {
		t.Fatalf("put: %s", errOut)
	}
	// A strong read on n1 makes sure n1 has applied the write before it is cut off (a follower
	// may lag the leader's acknowledgement by a few milliseconds).
	if out, errOut, ok := kvctl(t, "get", "k", "--consistency", "strong", "--endpoints", n1); !ok || out != "v" {
		t.Fatalf("strong read on n1 before the partition: %q %q", out, errOut)
	}
	if out, errOut, ok := kvctl(t, "cluster", "partition", "n1", "--data-dir", dir); !ok || !strings.Contains(out, "n1 cut off from n2, n3") {
		t.Fatalf("partition: %q %q", out, errOut)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, errOut, ok := kvctl(t, "get", "k", "--consistency", "strong", "--endpoints", n1, "--timeout", "8s")
		if !ok {
			t.Logf("strong read on the partitioned n1 fails: %s", strings.TrimSpace(errOut))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("strong reads on n1 still succeed 20s after cutting it off")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, errOut, ok := kvctl(t, "get", "k", "--consistency", "eventual", "--endpoints", n1); !ok || out != "v" {
		t.Fatalf("eventual read on the partitioned n1: %q %q", out, errOut)
	}
	if out, errOut, ok := kvctl(t, "cluster", "heal", "--data-dir", dir); !ok {
		t.Fatalf("heal: %q %q", out, errOut)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, _, ok := kvctl(t, "get", "k", "--consistency", "strong", "--endpoints", n1, "--timeout", "5s")
		if ok && out == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("strong reads on n1 did not come back within 20s of the heal")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
