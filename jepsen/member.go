package jepsen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dialkv/dialkv/client"
)

// removedStopWait bounds how long a removed node may take to stop: it hands its uncommitted
// eventual writes over first (kvd gives that 30 s).
const removedStopWait = 45 * time.Second

// peerArgs are the --bootstrap and --gossip-join values for node self among addrs.
func peerArgs(addrs []nodeAddrs, self string) (boot, gossip string) {
	var b, g []string
	for _, a := range addrs {
		b = append(b, a.id+"="+a.raft)
		if a.id != self {
			g = append(g, a.gossip)
		}
	}
	return strings.Join(b, ","), strings.Join(g, ",")
}

// Removed reports whether id was removed and not rejoined yet.
func (c *cluster) Removed(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removed[id]
}

// serving reports whether id runs, unpaused, as a member.
func (c *cluster) serving(id string) bool { return c.Running(id) && !c.Paused(id) && !c.Removed(id) }

// Remove asks the other live nodes to remove id (one of them forwards it to the leader) and
// waits until id's process has exited.
func (c *cluster) Remove(ctx context.Context, id string) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	var others []string
	for _, n := range c.Nodes() {
		if n.ID != id && c.serving(n.ID) {
			others = append(others, n.HTTP)
		}
	}
	if len(others) == 0 {
		return fmt.Errorf("removing %s: no other node runs", id)
	}
	cfg := client.DefaultConfig()
	cfg.Endpoints = others
	cfg.Timeout = 20 * time.Second
	cl, err := client.New(cfg)
	if err != nil {
		return err
	}
	if err := cl.RemoveMember(ctx, id); err != nil && !removedAnyway(ctx, others, id) {
		return fmt.Errorf("removing %s: %w", id, err)
	}
	c.mu.Lock()
	c.removed[id] = true
	c.mu.Unlock()
	// Not cut short with the run: killing the node now could drop writes it is handing over.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removedStopWait)
	defer cancel()
	if p.running() && !p.waitExited(wctx) {
		return fmt.Errorf("%s still runs %v after its removal", id, removedStopWait)
	}
	c.logf("%s removed and stopped; its log ends:\n%s", id, p.logTail(3))
	return nil
}

// removedAnyway asks the members at addrs whether id was removed after all (a removal whose
// answer was lost, e.g. leadership changed under it, may still have taken effect).
func removedAnyway(ctx context.Context, addrs []string, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		if askedRemoved(ctx, addrs, id) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func askedRemoved(ctx context.Context, addrs []string, id string) bool {
	if len(addrs) == 0 {
		return false
	}
	var nodes []Node
	for _, addr := range addrs {
		nodes = append(nodes, Node{HTTP: addr})
	}
	cl := statusClient(nodes)
	for _, addr := range addrs {
		if removed, err := cl.RemovedAt(ctx, addr, id); err == nil && removed {
			return true
		}
	}
	return false
}

// joinAddr is the HTTP address of a live member other than id, for --join.
func (c *cluster) joinAddr(id string, addr func(nodeAddrs) string) (string, error) {
	for _, a := range c.addrs {
		if a.id != id && c.serving(a.id) {
			return addr(a), nil
		}
	}
	return "", fmt.Errorf("rejoining %s: no other member runs to join through", id)
}

// Rejoin starts the removed node id from an empty data directory, joining through a live
// member, and waits until the cluster is whole again.
func (c *cluster) Rejoin(ctx context.Context, id string) error {
	join, err := c.joinAddr(id, func(a nodeAddrs) string { return a.http })
	if err != nil {
		return err
	}
	a, err := c.addr(id)
	if err != nil {
		return err
	}
	return c.rejoin(ctx, id, func(p *proc) error {
		if err := os.RemoveAll(filepath.Join(c.cfg.DataDir, id)); err != nil {
			return err
		}
		p.setArgv(c.args(a, join))
		return nil
	})
}

// rejoin kills id if it still runs, lets prepare give it an empty data directory and its
// joining command line, starts it and waits until every node agrees on a leader that lists it.
func (c *cluster) rejoin(ctx context.Context, id string, prepare func(*proc) error) error {
	if !c.Removed(id) {
		return fmt.Errorf("rejoining %s: it was not removed", id)
	}
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	if p.running() {
		c.logf("%s still runs after its removal: killing it before wiping its data", id)
		if err := p.kill(10 * time.Second); err != nil {
			return err
		}
	}
	if err := prepare(p); err != nil {
		return fmt.Errorf("rejoining %s: %w", id, err)
	}
	if err := p.start(); err != nil {
		return err
	}
	c.mu.Lock()
	c.removed[id] = false
	c.dirty[id] = !c.faults[id].IsZero()
	c.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := c.waitReady(wctx); err != nil {
		return fmt.Errorf("rejoining %s: %w", id, err)
	}
	return c.pushDirty(ctx)
}

// Rejoin recreates the removed node's container and volume, joining through a live member.
func (d *Docker) Rejoin(ctx context.Context, id string) error {
	join, err := d.joinAddr(id, func(a nodeAddrs) string { return a.id + ":7001" })
	if err != nil {
		return err
	}
	a, err := d.addr(id)
	if err != nil {
		return err
	}
	return d.rejoin(ctx, id, func(*proc) error {
		if _, err := dockerCmd(ctx, 30*time.Second, "rm", "-f", d.container(id)); err != nil {
			return err
		}
		if _, err := dockerCmd(ctx, 30*time.Second, "volume", "rm", "-f", d.container(id)); err != nil {
			return err
		}
		_, err := dockerCmd(ctx, 60*time.Second, d.createArgs(a, join)...)
		return err
	})
}
