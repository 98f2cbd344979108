//go:build !unix

package main

import "context"

// lockFile does nothing here: kvctl runs that share a --session file are not serialized on
// systems without flock(2), and the last one to finish leaves its token.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }

// lockDir does nothing here either: the local-cluster commands are not serialized.
func lockDir(context.Context, string, func()) (func(), error) { return func() {}, nil }
