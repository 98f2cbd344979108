package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/dialkv/dialkv/client"
)

// notReadyError says which nodes kept a cluster from being ready.
type notReadyError struct {
	// nodes are the ids at fault, whose logs are worth reading.
	nodes []string
	msg   string
}

func (e *notReadyError) Error() string { return e.msg }

// nodeState is one node's readiness as seen in one round of probes.
type nodeState struct {
	id string
	// ok is false when this node is at fault (not answering, no leader, not a member...): its
	// log is the one to read.
	ok    bool
	state string // a few words for progress and errors
}

// assessCluster decides from one round of /v1/status answers (nil status: errs says why) whether
// the cluster is ready: every node answers, all name the same leader, and the leader's own
// status lists every node, none of them down or still joining. It returns the leader when ready ("" otherwise)
// and every node's state either way.
func assessCluster(nodes []clusterNode, status map[string]*client.StatusResponse, errs map[string]error) (string, []nodeState) {
	states := make([]nodeState, len(nodes))
	local := map[string]bool{}
	leaders := map[string]bool{}
	for i, n := range nodes {
		local[n.ID] = true
		states[i] = nodeState{id: n.ID}
		switch st := status[n.ID]; {
		case st == nil:
			states[i].state = "not answering (" + probeReason(errs[n.ID]) + ")"
		case st.Leader == "":
			states[i].state = "no leader yet"
		default:
			leaders[st.Leader] = true
			states[i].ok = true
			states[i].state = "leader " + st.Leader
		}
	}
	if len(leaders) != 1 {
		if len(leaders) > 1 {
			// Two leaders at once (terms differ, or two clusters): nobody can be trusted yet.
			for i := range states {
				if states[i].ok {
					states[i].ok = false
					states[i].state += " (nodes disagree)"
				}
			}
		}
		return "", states
	}
	var leader string
	for l := range leaders {
		leader = l
	}
	view := status[leader]
	if view == nil {
		if !local[leader] {
			for i := range states {
				if states[i].ok {
					states[i].ok = false
					states[i].state = "leader " + leader + " is not a local node"
				}
			}
		}
		return "", states // or the leader itself is not answering, which its state says
	}
	members := map[string]client.NodeStatus{}
	for _, m := range view.Nodes {
		members[m.ID] = m
	}
	ready := true
	for i := range states {
		m, listed := members[states[i].id]
		switch {
		case !listed:
			states[i].ok = false
			states[i].state = "not yet a member in " + leader + "'s view"
		case m.Health == "down":
			states[i].ok = false
			states[i].state = "down in " + leader + "'s view"
			if m.Reason != "" {
				states[i].state += ": " + m.Reason
			}
		case m.Joining:
			// It takes no eventual writes until it has caught up with its own registration.
			states[i].ok = false
			states[i].state = "joining in " + leader + "'s view"
		case states[i].ok:
			states[i].state = "ok, leader " + leader
		}
		ready = ready && states[i].ok
	}
	if !ready {
		return "", states
	}
	return leader, states
}

// probeReason is a few words on why a node did not answer /v1/status.
func probeReason(err error) string {
	switch {
	case err == nil:
		return "no answer"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return err.Error()
}

// probe asks every node for its status, each with its own short timeout.
func probe(ctx context.Context, cl *client.Client, nodes []clusterNode) (map[string]*client.StatusResponse, map[string]error) {
	status := map[string]*client.StatusResponse{}
	errs := map[string]error{}
	for _, n := range nodes {
		st, err := cl.StatusOf(ctx, n.HTTP)
		if err != nil {
			errs[n.ID] = err
			continue
		}
		status[n.ID] = st
	}
	return status, errs
}

// newProbeClient is the client the cluster commands ask nodes with: one node at a time, quickly.
func newProbeClient(nodes []clusterNode) (*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Endpoints = nil
	for _, n := range nodes {
		cfg.Endpoints = append(cfg.Endpoints, n.HTTP)
	}
	cfg.Timeout = probeTimeout
	return client.New(cfg)
}

// waitClusterReady polls the nodes until assessCluster says ready, printing each change of state
// on progress. It gives up when ctx ends or a node kvctl started exits, with a *notReadyError
// naming the nodes at fault.
func waitClusterReady(ctx context.Context, nodes []clusterNode, exits <-chan nodeExit, progress io.Writer) (string, error) {
	cl, err := newProbeClient(nodes)
	if err != nil {
		return "", err
	}
	var states []nodeState
	leader, err := pollUntil(ctx, exits, progress, func(ctx context.Context) (string, string) {
		status, errs := probe(ctx, cl, nodes)
		if ctx.Err() != nil {
			// The deadline cut this round short: its timeouts say nothing about the nodes.
			return "", ""
		}
		var leader string
		leader, states = assessCluster(nodes, status, errs)
		parts := make([]string, len(states))
		for i, s := range states {
			parts[i] = s.id + " " + s.state
		}
		return leader, strings.Join(parts, "; ")
	})
	if err == nil {
		return leader, nil
	}
	var nr *notReadyError
	if errors.As(err, &nr) && len(nr.nodes) == 0 {
		// Timed out: the nodes not ready are the ones to look at.
		for _, s := range states {
			if !s.ok {
				nr.nodes = append(nr.nodes, s.id)
			}
		}
	}
	return "", err
}

// pollUntil calls check every pollInterval until it returns a non-empty result, printing its
// state text on progress whenever it changes (an empty state is no observation). It stops with a *notReadyError when ctx ends (with
// the last state, and nodes left empty for the caller to fill) or when a started node exits
// (nodes = that node).
func pollUntil(ctx context.Context, exits <-chan nodeExit, progress io.Writer, check func(context.Context) (result, state string)) (string, error) {
	start := time.Now()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var last string
	for {
		select {
		case e := <-exits:
			return "", exitedError(e, exits)
		default:
		}
		result, state := check(ctx)
		if result != "" {
			return result, nil
		}
		if state != "" && state != last {
			fmt.Fprintf(progress, "waiting: %s\n", state)
			last = state
		}
		select {
		case <-ctx.Done():
			how := "gave up" // --wait ran out
			if errors.Is(ctx.Err(), context.Canceled) {
				how = "interrupted" // Ctrl-C
			}
			return "", &notReadyError{msg: fmt.Sprintf("%s after %v: %s", how, time.Since(start).Round(100*time.Millisecond), last)}
		case e := <-exits:
			return "", exitedError(e, exits)
		case <-ticker.C:
		}
	}
}

// exitedError reports e and any other exits already known (nodes failing for one cause, such as
// a port in use, tend to fail together).
func exitedError(e nodeExit, more <-chan nodeExit) error {
	exited := []nodeExit{e}
	for drained := false; !drained; {
		select {
		case e := <-more:
			exited = append(exited, e)
		default:
			drained = true
		}
	}
	nr := &notReadyError{}
	var why []string
	for _, e := range exited {
		nr.nodes = append(nr.nodes, e.id)
		if e.err != nil {
			why = append(why, e.id+" exited: "+e.err.Error())
		} else {
			why = append(why, e.id+" exited")
		}
	}
	nr.msg = strings.Join(why, "; ")
	return nr
}
