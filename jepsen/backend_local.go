package jepsen

import (
	"context"
	"fmt"

	"github.com/dialkv/dialkv/internal/freeport"
)

// Local runs kvd processes on 127.0.0.1 with free ports. Network faults go through each kvd's
// fault hook (docs/faults.md), so they need a kvd that has it; kill, restart and pause do not.
type Local struct {
	*cluster
}

// NewLocal returns a local backend; nothing runs until Start.
func NewLocal(cfg ClusterConfig) (*Local, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var addrs []nodeAddrs
	for i := 1; i <= cfg.Nodes; i++ {
		a := nodeAddrs{id: fmt.Sprintf("n%d", i)}
		for _, dst := range []*string{&a.http, &a.raft, &a.gossip} {
			// TCP and UDP both free (gossip binds both), below the kernel's ephemeral range so
			// that nodes the run stops and restarts get their ports back, never handed out twice.
			port, err := freeport.Loopback()
			if err != nil {
				return nil, err
			}
			*dst = port
		}
		addrs = append(addrs, a)
	}
	return &Local{newCluster("local", cfg, addrs, "kvjepsen-"+randomID())}, nil
}

// Start starts the nodes and waits for a leader.
func (l *Local) Start(ctx context.Context) error { return l.startAll(ctx) }

// Close stops the nodes and removes their data (unless kept).
func (l *Local) Close() error { return l.closeAll() }
