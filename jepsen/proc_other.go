//go:build !unix

package jepsen

import (
	"errors"
	"os"
)

var errNoSignals = errors.New("pausing processes needs SIGSTOP/SIGCONT (unix only)")

func signalStop(*os.Process) error        { return errNoSignals }
func signalContinue(*os.Process) error    { return errNoSignals }
func signalTerminate(p *os.Process) error { return p.Kill() }
