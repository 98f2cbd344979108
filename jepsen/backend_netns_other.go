//go:build !linux

package jepsen

import (
	"context"
	"errors"
)

var errNoNetns = errors.New("the netns backend needs Linux")

// NetnsAvailable says why the netns backend cannot run here.
func NetnsAvailable() error { return errNoNetns }

// EnsureNetnsTools cannot help outside Linux.
func EnsureNetnsTools(context.Context, func(string, ...any)) error { return errNoNetns }

// CleanStale has nothing to clean outside Linux.
func CleanStale(context.Context) ([]string, error) { return nil, errNoNetns }

func newNetns(ClusterConfig) (Backend, error) { return nil, errNoNetns }
