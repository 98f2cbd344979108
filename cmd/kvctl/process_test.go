package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestIsKVDCommand(t *testing.T) {
	dir := t.TempDir()
	n1 := clusterNode{ID: "n1", Dir: filepath.Join(dir, "n1")}
	n2 := clusterNode{ID: "n2", Dir: filepath.Join(dir, "n2")}
	tests := []struct {
		argv []string
		n    clusterNode
		want bool
	}{
		{[]string{"/repo/bin/kvd", "--id", "n1", "--http", "x", "--data-dir", n1.Dir}, n1, true},
		{[]string{"kvd", "--http", "x", "--id=n2", "--data-dir=" + n2.Dir}, n2, true},
		{[]string{"./kvd", "-id", "n1", "-data-dir", n1.Dir + "/"}, n1, true},                    // spelled otherwise
		{[]string{"/repo/bin/kvd", "--id", "n1", "--data-dir", n1.Dir}, n2, false},               // another node's process
		{[]string{"/repo/bin/kvd", "--id", "n1", "--data-dir", "/elsewhere/data/n1"}, n1, false}, // another directory's n1
		{[]string{"/repo/bin/kvd", "--id", "n1"}, n1, false},                                     // no data dir: not kvctl's
		{[]string{"/usr/bin/sleep", "--id", "n1", "--data-dir", n1.Dir}, n1, false},              // pid reused by another program
		{[]string{"/repo/bin/kvd", "--http", "n1", "--data-dir", n1.Dir}, n1, false},             // id only as another flag's value
		{[]string{"/repo/bin/kvd", "--data-dir", n1.Dir, "--id"}, n1, false},
		{[]string{""}, n1, false}, // a zombie's empty command line
		{nil, n1, false},
	}
	for _, tt := range tests {
		if got := isKVDCommand(tt.argv, tt.n); got != tt.want {
			t.Errorf("isKVDCommand(%q, %s in %s) = %v, want %v", tt.argv, tt.n.ID, tt.n.Dir, got, tt.want)
		}
	}
}

func TestRunningPIDChecksTheProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	n := clusterNode{ID: "n1", Dir: t.TempDir()}
	for name, content := range map[string]string{
		"no pid file":        "",
		"garbage":            "not a pid\n",
		"a live non-kvd pid": strconv.Itoa(os.Getpid()) + "\n", // this test binary is not kvd
	} {
		os.Remove(n.pidPath())
		if content != "" {
			if err := os.WriteFile(n.pidPath(), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if pid, err := runningPID(n); pid != 0 || err != nil {
			t.Errorf("%s: runningPID = %d, %v; want not running", name, pid, err)
		}
	}
}

func TestLocateKVD(t *testing.T) {
	dir := t.TempDir()
	exeDir := filepath.Join(dir, "bin")
	pathDir := filepath.Join(dir, "path")
	for _, d := range []string{exeDir, pathDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeExe := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	inPath := filepath.Join(pathDir, "kvd")
	writeExe(inPath, 0o755)
	lookPath := func(string) (string, error) { return inPath, nil }
	notInPath := func(string) (string, error) { return "", errors.New("not found") }

	if got, err := locateKVD("", exeDir, lookPath); err != nil || got != inPath {
		t.Errorf("nothing next to kvctl: %q, %v; want the one in $PATH", got, err)
	}
	if _, err := locateKVD("", exeDir, notInPath); err == nil || !strings.Contains(err.Error(), "run make build") {
		t.Errorf("no kvd anywhere: error %v, want a hint to run make build", err)
	}
	writeExe(filepath.Join(exeDir, "kvd"), 0o644) // not executable: skipped
	if got, _ := locateKVD("", exeDir, lookPath); got != inPath {
		t.Errorf("non-executable kvd next to kvctl was chosen: %q", got)
	}
	sibling := filepath.Join(exeDir, "kvd")
	if err := os.Chmod(sibling, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := locateKVD("", exeDir, lookPath); err != nil || got != sibling {
		t.Errorf("kvd next to kvctl: %q, %v; want %q", got, err, sibling)
	}
	if got, err := locateKVD(inPath, exeDir, notInPath); err != nil || got != inPath {
		t.Errorf("--kvd: %q, %v", got, err)
	}
	if _, err := locateKVD(filepath.Join(dir, "nope"), exeDir, lookPath); err == nil {
		t.Error("--kvd naming no file was accepted")
	}
}

func TestTailLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := tailLines(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"line 4997", "line 4998", "line 4999"}; !slices.Equal(got, want) {
		t.Errorf("tail = %q, want %q", got, want)
	}
	os.WriteFile(path, []byte("only\n"), 0o644)
	if got, _ := tailLines(path, 3); !slices.Equal(got, []string{"only"}) {
		t.Errorf("tail of a short file = %q", got)
	}
}

// TestKVDReason: the reason cluster up prints on its last line is kvd's own exit line from the
// node's latest start, never one from an earlier run.
func TestKVDReason(t *testing.T) {
	n := clusterNode{ID: "n2", Dir: t.TempDir()}
	for _, tc := range []struct{ name, log, want string }{
		{"port in use",
			"=== kvctl 2026-12-04T19:31:31Z: kvd --id n2\nlevel=INFO msg=stopped\nkvd: listen on 127.0.0.1:7002: bind: address already in use\n",
			"kvd: listen on 127.0.0.1:7002: bind: address already in use"},
		{"an earlier run's reason is not this one's",
			"=== kvctl a: kvd\nkvd: old reason\n=== kvctl b: kvd\nlevel=INFO msg=serving\n", ""},
		{"no log line", "", ""},
	} {
		if err := os.WriteFile(n.logPath(), []byte(tc.log), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := kvdReason(n); got != tc.want {
			t.Errorf("%s: kvdReason = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestWaitGoneMeansPortsFree: once waitGone says a killed node is gone, its ports are free, so
// restart can start it again at once. A dying Go process loses its command line (its memory)
// before its last thread closes its sockets: that is not gone yet.
func TestWaitGoneMeansPortsFree(t *testing.T) {
	kvd, c := fakeLocalCluster(t, 1)
	n := c.Nodes[0]
	cl, err := newProbeClient(c.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		exits := make(chan nodeExit, 1)
		pid, err := startNode(kvd, n, exits)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for _, err := cl.StatusOf(context.Background(), n.HTTP); err != nil; _, err = cl.StatusOf(context.Background(), n.HTTP) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: n1 never answered: %v", round, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := signalProcess(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !waitGone(context.Background(), pid, n, killGrace) {
			t.Fatalf("round %d: pid %d not gone after SIGKILL", round, pid)
		}
		if err := checkPortsFree(n); err != nil {
			t.Fatalf("round %d: waitGone said pid %d was gone, but: %v", round, pid, err)
		}
		<-exits
	}
}

// TestStopNodesInterrupted: Ctrl-C during cluster down cuts the SIGTERM grace short and SIGKILLs
// the nodes, but still waits for them to go: it used to report them "still running after
// SIGKILL" (and keep their pid files) because the interrupted context bounded that wait too.
func TestStopNodesInterrupted(t *testing.T) {
	kvd, c := fakeLocalCluster(t, 2)
	for _, n := range c.Nodes {
		if _, err := startNode(kvd, n, make(chan nodeExit, 1)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	stopped, err := stopNodes(ctx, c.Nodes, &out)
	if err != nil || stopped != 2 {
		t.Fatalf("stopNodes after Ctrl-C = %d, %v; want 2 stopped (output %q)", stopped, err, out.String())
	}
	for _, n := range c.Nodes {
		if pid, _ := readPID(n); pid != 0 {
			t.Errorf("%s: pid file left (pid %d, running %v)", n.ID, pid, isNodeProcess(pid, n))
		}
	}
}
