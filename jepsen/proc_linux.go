package jepsen

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel SIGKILL a node if the harness dies without cleaning up
// (kill -9 of kvjepsen), so no kvd outlives its run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
