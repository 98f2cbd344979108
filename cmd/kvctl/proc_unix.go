//go:build unix

package main

import (
	"errors"
	"os/exec"
	"syscall"
)

// detach puts cmd in a process group of its own, so the node survives kvctl exiting and a Ctrl-C
// in kvctl's terminal (sent to the terminal's foreground process group) does not reach it.
//
// Not a new session: with the kernel's scheduler autogroups (sched_autogroup_enabled, on by
// default) each session is one scheduling group with an equal share of the CPU, so three nodes in
// three sessions of their own took three quarters of a busy machine from whatever ran in the
// user's session. A load generator there (kvctl bench, make bench) then measured its own
// starvation: 10,700 instead of 15,300 eventual GETs/s on a local cluster, same binaries.
func detach(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return nil
}

// processExists reports whether a process with this pid exists (kill(pid, 0)); EPERM means it
// exists but belongs to someone else.
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func signalProcess(pid int, sig syscall.Signal) error {
	return syscall.Kill(pid, sig)
}
