package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dialkv/dialkv/client"
)

func runStatus(ctx context.Context, inv *invocation) error {
	if inv.opts.watch < 0 {
		return usageErrorf("--watch must be positive, not %v", inv.opts.watch)
	}
	cl, err := newClient(inv.opts)
	if err != nil {
		return err
	}
	if inv.opts.watch > 0 {
		return watchStatus(ctx, inv, cl)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return failJSON(inv, err, client.Meta{})
	}
	if inv.opts.json {
		return writeJSON(inv.stdout, st)
	}
	return writeStatus(inv.stdout, st)
}

// runMemberRemove is kvctl member remove ID.
func runMemberRemove(ctx context.Context, inv *invocation) error {
	o := *inv.opts
	o.timeout = memberRemoveTimeout(&o)
	cl, err := newClient(&o)
	if err != nil {
		return err
	}
	id := inv.args[0]
	if err := cl.RemoveMember(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(inv.stdout, "removed %s from the cluster; if it still runs it stops itself (to add it again: kvctl cluster rejoin %s on a local cluster, else wipe its data directory and start it with --join)\n", id, id)
	return nil
}

// watchStatus redraws the status table every --watch interval until interrupted. A failed
// refresh is shown in place of the table (the cluster may be down) and does not end the watch.
// With --json it draws nothing: each refresh is one line, the status --json prints, or the
// error as a JSON error body, so a program can read the stream line by line.
func watchStatus(ctx context.Context, inv *invocation, cl *client.Client) error {
	ticker := time.NewTicker(inv.opts.watch)
	defer ticker.Stop()
	for {
		st, err := cl.Status(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: a refresh cut short says nothing of the cluster
		}
		switch {
		case inv.opts.json && err != nil:
			writeJSON(inv.stdout, errorBody(err))
		case inv.opts.json:
			writeJSON(inv.stdout, st)
		default:
			var buf bytes.Buffer
			fmt.Fprintf(&buf, "%s  every %v (ctrl-C stops)\n\n", time.Now().Format("15:04:05"), inv.opts.watch)
			if err != nil {
				fmt.Fprintf(&buf, "no status: %v\n", err)
			} else {
				writeStatus(&buf, st)
			}
			// Clear the screen and redraw from the top (ANSI), in one write to avoid flicker.
			fmt.Fprint(inv.stdout, "\x1b[H\x1b[2J"+buf.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// writeStatus prints a node's view of the cluster: who leads, then one row per member.
func writeStatus(w io.Writer, st *client.StatusResponse) error {
	leader := st.Leader
	if leader == "" {
		leader = "none known"
	}
	fmt.Fprintf(w, "leader: %s (as seen by %s; term %d, commit index %d, applied index %d)\n",
		leader, dash(st.Node), st.Term, st.CommitIndex, st.AppliedIndex)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHTTP\tROLE\tHEALTH\tGOSSIP\tAPPLIED\tTERM\tLAST CONTACT\tBACKLOG\tREASON")
	for _, n := range st.Nodes {
		// A member that did not report (down, or no answer in time) has no term, and its backlog
		// is unknown, not 0: a node cut off may hold many uncommitted writes.
		backlog := "-"
		if n.Term != 0 {
			backlog = strconv.Itoa(n.Backlog)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, dash(n.HTTP), dash(n.Role), dash(n.Health),
			dash(n.Gossip), count(n.AppliedIndex), count(n.Term), dash(n.LastContact), backlog, dash(n.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if line := purgeLine(*st); line != "" {
		fmt.Fprintln(w, line)
	}
	return nil
}

// purgeLine says which members deleted keys wait for before they can be purged ("" when none
// wait on anyone), and what to do. A member that is up and still named has a watermark that lags
// because of writes it holds uncommitted (a dead peer's, say): removing it would be wrong, so only
// members the status shows down are named for removal.
func purgeLine(st client.StatusResponse) string {
	p := st.Purge
	if p == nil || len(p.BlockedBy) == 0 && len(p.HeldBackBy) == 0 {
		return ""
	}
	down := map[string]bool{}
	for _, n := range st.Nodes {
		down[n.ID] = n.Health == "down" || n.Gossip == "dead" || n.Gossip == "left"
	}
	// A member can be named on both lists (no report since a removal, and an old watermark):
	// it is named once, with both reasons.
	reasons := map[string][]string{}
	var order []string
	add := func(id, what string) {
		if reasons[id] == nil {
			order = append(order, id)
		}
		reasons[id] = append(reasons[id], what)
	}
	for _, id := range p.BlockedBy {
		if _, reported := p.HeldBackBy[id]; reported {
			add(id, "no report since a member was removed")
		} else {
			add(id, "no report yet")
		}
	}
	for _, id := range slices.Sorted(maps.Keys(p.HeldBackBy)) {
		// The age of the member's watermark, not of its report: a member that reports every
		// second while it holds an old uncommitted write has an old watermark.
		add(id, "watermark "+p.HeldBackBy[id]+" old")
	}
	var why, gone []string
	for _, id := range order {
		what := strings.Join(reasons[id], ", ")
		if down[id] {
			what += ", down"
			gone = append(gone, id)
		}
		why = append(why, id+" ("+what+")")
	}
	keys := "deleted keys wait"
	if p.PendingTombstones == 1 {
		keys = "deleted key waits"
	}
	advice := "a member that is up reports once the writes it holds uncommitted are committed"
	if len(gone) > 0 {
		advice = "if " + strings.Join(gone, " or ") + " is gone for good, remove it with kvctl member remove ID"
	}
	return fmt.Sprintf("purge: %d %s for %s; %s", p.PendingTombstones, keys, strings.Join(why, ", "), advice)
}

// dash stands in for an unknown field, so table columns stay aligned and readable.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func count(n uint64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatUint(n, 10)
}

// memberRemoveTimeout is kvctl member remove's --timeout: removalTimeout unless the flag was given.
func memberRemoveTimeout(o *options) time.Duration {
	if o.given["timeout"] {
		return o.timeout
	}
	return removalTimeout
}
