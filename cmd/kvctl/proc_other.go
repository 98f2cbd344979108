//go:build !unix

package main

import (
	"errors"
	"os/exec"
	"syscall"
)

// errNoUnix: the local-cluster commands manage processes the Unix way (sessions, signals).
var errNoUnix = errors.New("kvctl cluster needs a Unix system")

func detach(*exec.Cmd) error                  { return errNoUnix }
func processExists(int) bool                  { return false }
func signalProcess(int, syscall.Signal) error { return errNoUnix }
