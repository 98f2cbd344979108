//go:build linux

package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A detached node leads its own process group (a Ctrl-C in kvctl's terminal does not reach it)
// but stays in kvctl's session, so the scheduler's per-session autogroups do not give the nodes
// a share of the CPU apiece against the user's own programs.
func TestDetachOwnGroupSameSession(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := detach(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != pid {
		t.Errorf("process group %d, want its own (%d)", pgid, pid)
	}
	if got, want := sessionOf(t, pid), sessionOf(t, os.Getpid()); got != want {
		t.Errorf("session %d, want kvctl's %d", got, want)
	}
}

// sessionOf reads a process's session id (field 6 of /proc/PID/stat).
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after it.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	sid, err := strconv.Atoi(fields[3]) // state, ppid, pgrp, session
	if err != nil {
		t.Fatal(err)
	}
	return sid
}
