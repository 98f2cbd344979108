//go:build unix

package main

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time (user and system) this process has used; ok is false when the
// system does not say.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
