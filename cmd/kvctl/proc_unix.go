//go:build unix

package main

import (
	"errors"
	"os/exec"
	"syscall"
)

// detach makes cmd the leader of a new session, so the node survives kvctl exiting and a Ctrl-C
// in kvctl's terminal (sent to the terminal's foreground process group) does not reach it.
func detach(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
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
