package jepsen

import (
	"context"
	"fmt"
	"net"
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
	used := map[string]bool{}
	for i := 1; i <= cfg.Nodes; i++ {
		a := nodeAddrs{id: fmt.Sprintf("n%d", i)}
		for _, dst := range []*string{&a.http, &a.raft, &a.gossip} {
			port, err := freePort(used)
			if err != nil {
				return nil, err
			}
			*dst = port
		}
		addrs = append(addrs, a)
	}
	return &Local{newCluster("local", cfg, addrs, "kvjepsen-"+randomID())}, nil
}

// freePort returns a 127.0.0.1 address whose TCP and UDP ports are free right now (gossip
// binds both) and not in used; it adds it to used.
func freePort(used map[string]bool) (string, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		if used[addr] {
			continue
		}
		used[addr] = true
		return addr, nil
	}
	return "", fmt.Errorf("no free TCP+UDP port on 127.0.0.1")
}

// Start starts the nodes and waits for a leader.
func (l *Local) Start(ctx context.Context) error { return l.startAll(ctx) }

// Close stops the nodes and removes their data (unless kept).
func (l *Local) Close() error { return l.closeAll() }
