package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dialkv/dialkv/client"
)

// The fault commands drive the test-only hook of the local cluster's nodes (docs/faults.md):
// `cluster up` starts every node with --test-faults, so a user can cut links, slow them and skew
// clocks, and watch request by request what each consistency level does.

// faultTarget is a node of the local cluster with its current faults.
type faultTarget struct {
	node   clusterNode
	faults client.Faults
}

// loadFaults reads the current faults of the named nodes (all when ids is empty).
func loadFaults(ctx context.Context, inv *invocation, ids []string) (*client.Client, clusterFile, map[string]*faultTarget, error) {
	c, err := loadCluster(inv.opts.dataDir)
	if err != nil {
		return nil, c, nil, err
	}
	cl, err := newProbeClient(c.Nodes)
	if err != nil {
		return nil, c, nil, err
	}
	targets := map[string]*faultTarget{}
	for _, id := range ids {
		n, err := c.node(id)
		if err != nil {
			return nil, c, nil, err
		}
		f, err := cl.Faults(ctx, n.HTTP)
		if err != nil {
			return nil, c, nil, fmt.Errorf("%s: reading its faults: %w", id, err)
		}
		targets[id] = &faultTarget{node: n, faults: f}
	}
	return cl, c, targets, nil
}

func storeFaults(ctx context.Context, cl *client.Client, targets map[string]*faultTarget) error {
	ids := make([]string, 0, len(targets))
	for id := range targets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		t := targets[id]
		if _, err := cl.SetFaults(ctx, t.node.HTTP, t.faults); err != nil {
			return fmt.Errorf("%s: setting its faults: %w", id, err)
		}
	}
	return nil
}

func addIDs(list []string, ids ...string) []string {
	for _, id := range ids {
		if !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	slices.Sort(list)
	return list
}

func splitIDs(s string) []string {
	var ids []string
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// runClusterPartition cuts NODE off from --from (default: every other node), both ways, or with
// --one-way only the traffic from them to NODE.
func runClusterPartition(ctx context.Context, inv *invocation) error {
	victim := inv.args[0]
	c, err := loadCluster(inv.opts.dataDir)
	if err != nil {
		return err
	}
	if _, err := c.node(victim); err != nil {
		return err
	}
	from := splitIDs(inv.opts.from)
	if len(from) == 0 {
		for _, n := range c.Nodes {
			if n.ID != victim {
				from = append(from, n.ID)
			}
		}
	}
	if slices.Contains(from, victim) {
		return usageErrorf("a node cannot be partitioned from itself")
	}
	cl, _, targets, err := loadFaults(ctx, inv, append(slices.Clone(from), victim))
	if err != nil {
		return err
	}
	v := targets[victim]
	v.faults.DropIn = addIDs(v.faults.DropIn, from...)
	for _, id := range from {
		t := targets[id]
		t.faults.DropOut = addIDs(t.faults.DropOut, victim)
		if !inv.opts.oneWay {
			v.faults.DropOut = addIDs(v.faults.DropOut, id)
			t.faults.DropIn = addIDs(t.faults.DropIn, victim)
		}
	}
	if err := storeFaults(ctx, cl, targets); err != nil {
		return err
	}
	how := "cut off from"
	if inv.opts.oneWay {
		how = "no longer hears"
	}
	fmt.Fprintf(inv.stdout, "%s %s %s (kvctl cluster heal undoes it)\n", victim, how, strings.Join(from, ", "))
	return nil
}

// runClusterSlow sets the delay, jitter and loss of NODE's outgoing traffic. At least one of
// the flags must be given: without any the command would quietly clear them, which is what
// giving them all as 0 is for.
func runClusterSlow(ctx context.Context, inv *invocation) error {
	o := inv.opts
	if !o.given["delay"] && !o.given["jitter"] && !o.given["loss"] {
		return usageErrorf("kvctl cluster slow needs --delay D, --jitter D or --loss P (e.g. --delay 100ms)")
	}
	if o.delay < 0 || o.jitter < 0 || o.loss < 0 || o.loss > 1 {
		return usageErrorf("--delay and --jitter must not be negative, --loss is a probability (0 to 1)")
	}
	cl, _, targets, err := loadFaults(ctx, inv, inv.args[:1])
	if err != nil {
		return err
	}
	t := targets[inv.args[0]]
	t.faults.Delay, t.faults.Jitter, t.faults.Loss = durationText(o.delay), durationText(o.jitter), o.loss
	if err := storeFaults(ctx, cl, targets); err != nil {
		return err
	}
	if o.delay == 0 && o.jitter == 0 && o.loss == 0 {
		fmt.Fprintf(inv.stdout, "%s: outgoing traffic no longer delayed or lost\n", t.node.ID)
		return nil
	}
	fmt.Fprintf(inv.stdout, "%s: outgoing traffic delayed %v (+ up to %v), %.0f%% lost\n", t.node.ID, o.delay, o.jitter, 100*o.loss)
	return nil
}

// runClusterSkew shifts NODE's clock (the physical clock under its hybrid logical clock).
// --offset must be given; --offset 0s puts the clock back.
func runClusterSkew(ctx context.Context, inv *invocation) error {
	if !inv.opts.given["offset"] {
		return usageErrorf("kvctl cluster skew needs --offset D (e.g. --offset 2s, or -2s for behind; 0s puts the clock back)")
	}
	cl, _, targets, err := loadFaults(ctx, inv, inv.args[:1])
	if err != nil {
		return err
	}
	t := targets[inv.args[0]]
	t.faults.ClockOffset = durationText(inv.opts.offset)
	if err := storeFaults(ctx, cl, targets); err != nil {
		return err
	}
	if inv.opts.offset == 0 {
		fmt.Fprintf(inv.stdout, "%s: clock no longer shifted\n", t.node.ID)
		return nil
	}
	fmt.Fprintf(inv.stdout, "%s: clock shifted by %v\n", t.node.ID, inv.opts.offset)
	return nil
}

// runClusterHeal clears every fault on every running node.
func runClusterHeal(ctx context.Context, inv *invocation) error {
	c, err := loadCluster(inv.opts.dataDir)
	if err != nil {
		return err
	}
	cl, err := newProbeClient(c.Nodes)
	if err != nil {
		return err
	}
	var unreachable []string
	for _, n := range c.Nodes {
		if err := cl.HealFaults(ctx, n.HTTP); err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s (%v)", n.ID, err))
		}
	}
	if len(unreachable) == len(c.Nodes) {
		return fmt.Errorf("healed no node: could not reach %s", strings.Join(unreachable, ", "))
	}
	if len(unreachable) > 0 {
		return fmt.Errorf("healed the others; could not reach %s", strings.Join(unreachable, ", "))
	}
	fmt.Fprintf(inv.stdout, "healed: no faults on %d nodes\n", len(c.Nodes))
	return nil
}

func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}
