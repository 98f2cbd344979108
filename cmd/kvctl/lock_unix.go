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
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the last descriptor releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
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
