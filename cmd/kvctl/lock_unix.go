//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive lock on path (created if missing), waiting while another process
// (or another open of it) holds it, until ctx ends. It returns the function that releases it. The
// lock is flock(2)'s, so it goes away with the process that holds it: a kvctl killed mid-call
// leaves nothing to clean up.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return flockWait(ctx, f, path, func() {})
}

// lockDir is lockFile on the directory itself, so that it creates no file there; busy is called
// once if another holder makes it wait.
func lockDir(ctx context.Context, dir string, busy func()) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	return flockWait(ctx, f, dir, busy)
}

// flockWait locks f (named path) exclusively, waiting until ctx ends, and closes f on failure.
func flockWait(ctx context.Context, f *os.File, path string, busy func()) (func(), error) {
	for waited := false; ; waited = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the last descriptor releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		if !waited {
			busy()
		}
		// Polled rather than a blocking flock, so that Ctrl-C still ends kvctl while it waits.
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another kvctl to release %s: %w", path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
