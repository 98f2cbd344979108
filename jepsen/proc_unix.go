//go:build unix

package jepsen

import (
	"os"
	"syscall"
)

func signalStop(p *os.Process) error      { return p.Signal(syscall.SIGSTOP) }
func signalContinue(p *os.Process) error  { return p.Signal(syscall.SIGCONT) }
func signalTerminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
