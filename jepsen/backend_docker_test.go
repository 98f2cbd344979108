package jepsen

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDockerBackendConfig(t *testing.T) {
	dir := t.TempDir()
	b, err := NewBackend("docker", ClusterConfig{Nodes: 3, DataDir: dir + "/data", LogDir: dir + "/logs", LogLevel: "info", LeaderWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := b.(*Docker)
	if !ok || b.Name() != "docker" {
		t.Fatalf("NewBackend(docker) = %T named %q", b, b.Name())
	}
	for _, n := range b.Nodes() {
		if !strings.HasPrefix(n.HTTP, "127.0.0.1:") {
			t.Errorf("%s published on %s, want 127.0.0.1 only", n.ID, n.HTTP)
		}
	}
	args := d.createArgs(d.addrs[1], "")
	line := strings.Join(args, " ")
	for _, want := range []string{
		"--name " + d.run + "-n2", "--network " + d.run, "--network-alias n2",
		"-p " + d.addrs[1].http + ":7001", "-v " + d.run + "-n2:/data",
		"--http n2:7001", "--raft n2:7101", "--gossip 0.0.0.0:7201", "--gossip-advertise n2:7201",
		"--gossip-join n1:7201,n3:7201", "--bootstrap n1=n1:7101,n2=n2:7101,n3=n3:7101",
		"--test-faults", "--leader-wait 1s",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("docker create line lacks %q:\n%s", want, line)
		}
	}
	if i := slices.Index(args, d.image); i < 0 || !slices.Contains(args[:i], "--label") {
		t.Errorf("the image must follow docker's own flags: %s", line)
	}
	// Rejoining after a removal: --join through a member instead of --bootstrap.
	rejoin := strings.Join(d.createArgs(d.addrs[1], "n1:7001"), " ")
	if !strings.Contains(rejoin, "--join n1:7001") || strings.Contains(rejoin, "--bootstrap") {
		t.Errorf("docker create line to rejoin: %s", rejoin)
	}
	// Close before Start touches no Docker object and is safe twice.
	if err := b.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestDockerEndToEnd runs the docker backend (3 containers, register and set, one partition and
// one kill) when a Docker engine answers and the image exists (make image).
func TestDockerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("docker end-to-end run: skipped with -short")
	}
	image := os.Getenv("KVJEPSEN_IMAGE")
	if image == "" {
		image = DefaultDockerImage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := DockerAvailable(ctx, image); err != nil {
		t.Skipf("docker backend: %v", err)
	}
	cfg := testConfig(t, "docker")
	cfg.Nodes, cfg.Clients, cfg.Rate = 3, 6, 90
	cfg.Workloads = []string{WorkloadRegister, WorkloadSet}
	cfg.Time, cfg.FaultOn, cfg.FaultOff = 20*time.Second, 5*time.Second, 4*time.Second
	cfg.Nemesis = FaultPartition + "," + FaultKill
	res := runForTest(t, cfg)
	if res.Verdict != VerdictPass {
		var b bytes.Buffer
		res.WriteTable(&b)
		t.Fatalf("verdict %s:\n%s", res.Verdict, b.String())
	}
}
