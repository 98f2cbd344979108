package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dialkv/dialkv/client"
)

// Timings of the local-cluster commands.
const (
	// pollInterval paces the readiness and exit checks.
	pollInterval = 200 * time.Millisecond
	// probeTimeout bounds one /v1/status request to one node while waiting: a node that takes
	// longer is not ready.
	probeTimeout = time.Second
	// stopGrace is how long a node gets to exit after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// killGrace is how long the kernel gets to remove a SIGKILLed process.
	killGrace = 5 * time.Second
	// logTailLines is how much of a failed node's log is shown.
	logTailLines = 15
)

// checkWait refuses a --wait that leaves no time to wait: the node commands return only once
// the nodes are ready (DESIGN.md says so of cluster up), so they would start or kill nodes and
// then fail at once. Checked before anything is done, as --timeout and --watch are.
func checkWait(o *options) error {
	if o.wait <= 0 {
		return usageErrorf("--wait must be positive, not %v: it bounds the wait for the nodes to be ready", o.wait)
	}
	return nil
}

func runClusterUp(ctx context.Context, inv *invocation) error {
	o := inv.opts
	if err := checkWait(o); err != nil {
		return err
	}
	n := o.nodes
	// 0 stands for "not given" below: --nodes 0 must not quietly start the default three.
	if o.given["nodes"] && (n < 1 || n > maxLocalNodes) {
		return usageErrorf("--nodes must be between 1 and %d, not %d", maxLocalNodes, n)
	}
	if _, err := os.Stat(o.dataDir); errors.Is(err, fs.ErrNotExist) {
		// Made here to be locked; a cluster up that fails before it writes cluster.json (a
		// port in use) leaves no empty directory behind.
		defer func() {
			if _, err := os.Stat(filepath.Join(o.dataDir, clusterFileName)); err != nil {
				_ = os.Remove(o.dataDir) // only if empty
			}
		}()
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return err
	}
	unlock, err := lockCluster(ctx, inv)
	if err != nil {
		return err
	}
	defer unlock()
	base := o.basePort
	existing, err := loadClusterFile(o.dataDir)
	switch {
	case err == nil:
		// The nodes' data already holds a voter set: a different count would bootstrap the new
		// nodes into a second cluster.
		if n != 0 && n != len(existing.Nodes) {
			return fmt.Errorf("%s holds a %d-node cluster; use --nodes %d, or kvctl cluster down --purge to start afresh",
				o.dataDir, len(existing.Nodes), len(existing.Nodes))
		}
		n = len(existing.Nodes)
		// So do its Raft addresses, on every node: the cluster comes back where it was. (A
		// --base-port out of range is a usage error all the same.)
		if o.given["base-port"] && o.basePort != existing.basePort() {
			if err := checkBasePort(o.basePort, n); err != nil {
				return err
			}
			return fmt.Errorf("%s holds a cluster on base port %d; use --base-port %d (or leave it out), or kvctl cluster down --purge to start afresh",
				o.dataDir, existing.basePort(), existing.basePort())
		}
		base = existing.basePort()
	case errors.Is(err, fs.ErrNotExist):
		if n == 0 {
			n = defaultNodes
		}
	default:
		return err
	}
	// The plan first: a --base-port that does not fit the node count is a usage error, whether
	// or not kvd is found.
	plan, err := planCluster(n, base, o.dataDir)
	if err != nil {
		return err
	}
	bin, err := findKVD(o.kvd)
	if err != nil {
		return err
	}
	var toStart []clusterNode
	for _, node := range plan.Nodes {
		pid, err := runningPID(node)
		if err != nil {
			return err
		}
		if pid != 0 {
			fmt.Fprintf(inv.stderr, "%s: already running (pid %d)\n", node.ID, pid)
			continue
		}
		toStart = append(toStart, node)
	}
	// Before anything starts: a node on a taken port would only die, and the readiness probe
	// would meanwhile take whatever answers on its HTTP port (another cluster's node) for it.
	for _, node := range toStart {
		if err := checkPortsFree(node); err != nil {
			return fmt.Errorf("cluster up: %w; nothing was started", err)
		}
	}
	if err := saveClusterFile(plan); err != nil {
		return err
	}
	exits := make(chan nodeExit, len(plan.Nodes))
	for _, node := range toStart {
		pid, err := startNode(bin, node, exits)
		if err != nil {
			return err
		}
		fmt.Fprintf(inv.stderr, "%s: started (pid %d), http %s, log %s\n", node.ID, pid, node.HTTP, node.logPath())
	}
	// Every node has its pid file: other commands may act on them while this one waits.
	unlock()

	ctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	leader, err := waitClusterReady(ctx, plan.Nodes, exits, inv.stderr)
	if err != nil {
		var reasons []string
		var nr *notReadyError
		if errors.As(err, &nr) {
			for _, id := range nr.nodes {
				if node, nerr := plan.node(id); nerr == nil {
					writeLogTail(inv.stderr, node)
					if r := kvdReason(node); r != "" {
						reasons = append(reasons, id+": "+r)
					}
				}
			}
		}
		// The last line is what a script shows: it must hold kvd's own reason (a port in use,
		// say), and say that the nodes which did start are still up.
		why := ""
		if len(reasons) > 0 {
			why = " (" + strings.Join(reasons, "; ") + ")"
		}
		return fmt.Errorf("cluster up: %w%s; nodes that started keep running (kvctl cluster status; kvctl cluster down stops them)", err, why)
	}
	endpoints := strings.Join(plan.httpAddrs(), ",")
	fmt.Fprintf(inv.stdout, "cluster up: %d %s, leader %s\nendpoints: %s\nexport KV_ENDPOINTS=%s\n",
		len(plan.Nodes), plural(len(plan.Nodes), "node", "nodes"), leader, endpoints, endpoints)
	return nil
}

func runClusterDown(ctx context.Context, inv *invocation) error {
	o := inv.opts
	unlock, err := lockCluster(ctx, inv)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := loadClusterFile(o.dataDir)
	nodes := c.Nodes
	if err != nil {
		// No (readable) cluster.json: the pid files still say what runs.
		if nodes, err = nodesInDir(o.dataDir); err != nil {
			return err
		}
	}
	stopped, err := stopNodes(ctx, nodes, inv.stdout)
	if err != nil {
		return err
	}
	if stopped == 0 {
		fmt.Fprintln(inv.stdout, "cluster down: no node was running")
	} else {
		fmt.Fprintf(inv.stdout, "cluster down: stopped %d %s\n", stopped, plural(stopped, "node", "nodes"))
	}
	if o.purge {
		return purge(o.dataDir, inv.stdout)
	}
	return nil
}

// lockCluster keeps the commands that start and stop the nodes of --data-dir from acting on them
// at once: two cluster up at the same time each started every node, and a node's pid file could
// name the copy that then died on the taken port, leaving the other running where no kvctl
// command would find it. The lock is on the directory itself (no file of kvctl's in it); a
// missing one has no nodes to guard. The function it returns may be called more than once.
func lockCluster(ctx context.Context, inv *invocation) (func(), error) {
	dir := inv.opts.dataDir
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	unlock, err := lockDir(ctx, dir, func() {
		fmt.Fprintf(inv.stderr, "waiting for another kvctl cluster command on %s to finish\n", dir)
	})
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(unlock) }, nil
}

// purge removes what cluster up made in dataDir, and nothing else: --data-dir may name a
// directory that held other files before (or be mistyped), so it removes the node directories
// cluster.json lists and cluster.json itself, then dataDir only if that left it empty.
func purge(dataDir string, out io.Writer) error {
	if _, err := os.Stat(dataDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	c, err := loadClusterFile(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("not purging %s: it has no %s, so it may not be a kvctl cluster", dataDir, clusterFileName)
	}
	if err != nil {
		return fmt.Errorf("not purging %s: %v, so what kvctl created there is unknown", dataDir, err)
	}
	var dirs []string
	for _, n := range c.Nodes {
		// Node ids are kvctl's own (n1, n2...): anything else, ".." say, is not a directory
		// cluster up made, and may lie outside dataDir.
		if !isLocalNodeID(n.ID) {
			return fmt.Errorf("not purging %s: its %s names a node %q that kvctl cluster up does not make", dataDir, clusterFileName, n.ID)
		}
		dirs = append(dirs, filepath.Join(dataDir, n.ID))
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("purging %s: %w", dataDir, err)
		}
	}
	if err := os.Remove(filepath.Join(dataDir, clusterFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("purging %s: %w", dataDir, err)
	}
	if err := os.Remove(dataDir); errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		fmt.Fprintf(out, "removed the nodes' data and %s; kept %s: it holds files kvctl did not create\n", clusterFileName, dataDir)
		return nil
	} else if err != nil {
		return fmt.Errorf("purging %s: %w", dataDir, err)
	}
	fmt.Fprintf(out, "removed %s\n", dataDir)
	return nil
}

// isLocalNodeID reports whether id is one planCluster gives: "n" and a number.
func isLocalNodeID(id string) bool {
	digits := strings.TrimPrefix(id, "n")
	if digits == id || digits == "" {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func runClusterKill(ctx context.Context, inv *invocation) error {
	return signalNode(ctx, inv, syscall.SIGKILL, killGrace)
}

func runClusterStop(ctx context.Context, inv *invocation) error {
	return signalNode(ctx, inv, syscall.SIGTERM, stopGrace)
}

// signalNode sends sig to one node and waits up to grace for it to exit. A node that is not
// running is already where the command would put it, so that is not an error.
func signalNode(ctx context.Context, inv *invocation, sig syscall.Signal, grace time.Duration) error {
	unlock, err := lockCluster(ctx, inv)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := loadCluster(inv.opts.dataDir)
	if err != nil {
		return err
	}
	n, err := c.node(inv.args[0])
	if err != nil {
		return err
	}
	pid, err := runningPID(n)
	if err != nil {
		return err
	}
	if pid == 0 {
		removePIDFile(n)
		fmt.Fprintf(inv.stdout, "%s: not running\n", n.ID)
		return nil
	}
	// ESRCH: it exited between the check and the signal, which is what was asked for.
	if err := signalProcess(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: %v to pid %d: %w", n.ID, sig, pid, err)
	}
	if !waitGone(ctx, pid, n, grace) {
		return fmt.Errorf("%s (pid %d) still running %v after %v; try kvctl cluster kill %s", n.ID, pid, grace, sig, n.ID)
	}
	removePIDFile(n)
	verb := "stopped"
	if sig == syscall.SIGKILL {
		verb = "killed"
	}
	fmt.Fprintf(inv.stdout, "%s: %s (pid %d)\n", n.ID, verb, pid)
	return nil
}

func runClusterRestart(ctx context.Context, inv *invocation) error {
	if err := checkWait(inv.opts); err != nil {
		return err
	}
	unlock, err := lockCluster(ctx, inv)
	if err != nil {
		return err
	}
	defer unlock()
	_, n, bin, err := clusterNodeAndKVD(inv)
	if err != nil {
		return err
	}
	pid, err := runningPID(n)
	if err != nil {
		return err
	}
	if pid != 0 {
		if err := signalProcess(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("%s: SIGKILL pid %d: %w", n.ID, pid, err)
		}
		if !waitGone(ctx, pid, n, killGrace) {
			return fmt.Errorf("%s (pid %d) still running %v after SIGKILL", n.ID, pid, killGrace)
		}
		fmt.Fprintf(inv.stderr, "%s: killed (pid %d)\n", n.ID, pid)
	}
	pid, leader, err := startAndWait(ctx, inv, bin, n, unlock)
	if err != nil {
		return fmt.Errorf("%s restarted but not ready: %w", n.ID, err)
	}
	fmt.Fprintf(inv.stdout, "%s: restarted (pid %d), leader %s\n", n.ID, pid, leader)
	return nil
}

// clusterNodeAndKVD loads the local cluster, the node the first argument names, and the kvd
// binary to start it with.
func clusterNodeAndKVD(inv *invocation) (clusterFile, clusterNode, string, error) {
	c, err := loadCluster(inv.opts.dataDir)
	if err != nil {
		return c, clusterNode{}, "", err
	}
	n, err := c.node(inv.args[0])
	if err != nil {
		return c, n, "", err
	}
	bin, err := findKVD(inv.opts.kvd)
	return c, n, bin, err
}

// startAndWait starts n, calls unlock (its pid file is written), and waits (up to --wait) until
// it answers and knows a leader; on failure it prints the end of n's log.
func startAndWait(ctx context.Context, inv *invocation, bin string, n clusterNode, unlock func()) (pid int, leader string, err error) {
	if err := checkPortsFree(n); err != nil {
		return 0, "", err
	}
	exits := make(chan nodeExit, 1)
	if pid, err = startNode(bin, n, exits); err != nil {
		return 0, "", err
	}
	unlock()
	fmt.Fprintf(inv.stderr, "%s: started (pid %d), log %s\n", n.ID, pid, n.logPath())
	cl, err := newProbeClient([]clusterNode{n})
	if err != nil {
		return pid, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, inv.opts.wait)
	defer cancel()
	leader, err = pollUntil(ctx, exits, inv.stderr, func(ctx context.Context) (string, string) {
		st, err := cl.StatusOf(ctx, n.HTTP)
		switch {
		case ctx.Err() != nil:
			return "", "" // cut short by the deadline: no observation
		case err != nil:
			return "", n.ID + " not answering (" + probeReason(err) + ")"
		case st.Leader == "":
			return "", n.ID + " no leader yet"
		}
		return st.Leader, ""
	})
	if err != nil {
		writeLogTail(inv.stderr, n)
	}
	return pid, leader, err
}

// runClusterRejoin is kvctl cluster rejoin NODE: a node removed from the cluster (kvctl member
// remove) starts again from an empty data directory and joins through another local node.
func runClusterRejoin(ctx context.Context, inv *invocation) error {
	if err := checkWait(inv.opts); err != nil {
		return err
	}
	unlock, err := lockCluster(ctx, inv)
	if err != nil {
		return err
	}
	defer unlock()
	c, n, bin, err := clusterNodeAndKVD(inv)
	if err != nil {
		return err
	}
	if pid, err := runningPID(n); err != nil {
		return err
	} else if pid != 0 {
		// Right after kvctl member remove the node is still handing over and stopping: say
		// so, rather than send the user to remove it again.
		return fmt.Errorf("%s is running (pid %d): only a removed node that has stopped can rejoin; remove it with kvctl member remove %s if not done yet, and wait until kvctl cluster status shows it stopped (a removed node stops itself within seconds)", n.ID, pid, n.ID)
	}
	var join string
	for _, other := range c.Nodes {
		if pid, _ := runningPID(other); other.ID != n.ID && pid != 0 {
			join = other.HTTP
			break
		}
	}
	if join == "" {
		return fmt.Errorf("no other local node runs for %s to join through", n.ID)
	}
	// Its data goes: a member that was only stopped may hold acknowledged eventual writes no
	// other node has. Only the cluster's word that it was removed (it handed them over, or its
	// removal declared them gone) lets them go.
	cl, err := newProbeClient(c.Nodes)
	if err != nil {
		return err
	}
	if removed, err := cl.RemovedAt(ctx, join, n.ID); err != nil || !removed {
		if err == nil {
			err = fmt.Errorf("%s does not say it was removed", join)
		}
		return fmt.Errorf("%s is still a member of the cluster (%v): rejoin starts a removed node again, and wipes its data; kvctl cluster restart %s starts it on its data (to replace its data, remove it first with kvctl member remove %s)", n.ID, err, n.ID, n.ID)
	}
	if err := checkPortsFree(n); err != nil {
		return err
	}
	if err := wipeNodeData(n); err != nil {
		return err
	}
	fmt.Fprintf(inv.stderr, "%s: data wiped (its log kept), joining through %s\n", n.ID, join)
	pid, leader, err := startAndWait(ctx, inv, bin, joinArgs(n, join), unlock)
	if err != nil {
		return fmt.Errorf("%s started but did not join: %w", n.ID, err)
	}
	fmt.Fprintf(inv.stdout, "%s: rejoined (pid %d), leader %s\n", n.ID, pid, leader)
	return nil
}

// wipeNodeData empties n's data directory but for its log.
func wipeNodeData(n clusterNode) error {
	entries, err := os.ReadDir(n.Dir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, e := range entries {
		if p := filepath.Join(n.Dir, e.Name()); p != n.logPath() {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// joinArgs is n starting with --join addr instead of --bootstrap (for a wiped node).
func joinArgs(n clusterNode, addr string) clusterNode {
	args := slices.Clone(n.Args)
	if i := slices.Index(args, "--bootstrap"); i >= 0 && i+1 < len(args) {
		args = slices.Delete(args, i, i+2)
	}
	n.Args = append(args, "--join", addr)
	return n
}

// localNodeReport is one row of `kvctl cluster status`.
type localNodeReport struct {
	ID      string                 `json:"id"`
	PID     int                    `json:"pid,omitempty"`
	Running bool                   `json:"running"`
	HTTP    string                 `json:"http"`
	Status  *client.StatusResponse `json:"status,omitempty"`
	// Removed: a running node says this one was removed from the cluster (kvctl member remove).
	Removed bool   `json:"removed,omitempty"`
	Error   string `json:"error,omitempty"`
}

// removedByCluster asks a running node whether id was removed from the cluster (410).
func removedByCluster(ctx context.Context, cl *client.Client, reports []localNodeReport, id string) bool {
	for _, r := range reports {
		if r.Status != nil && r.ID != id {
			removed, err := cl.RemovedAt(ctx, r.HTTP, id)
			return err == nil && removed
		}
	}
	return false
}

func runClusterStatus(ctx context.Context, inv *invocation) error {
	c, err := loadCluster(inv.opts.dataDir)
	if err != nil {
		return err
	}
	cl, err := newProbeClient(c.Nodes)
	if err != nil {
		return err
	}
	reports := make([]localNodeReport, len(c.Nodes))
	for i, n := range c.Nodes {
		r := localNodeReport{ID: n.ID, HTTP: n.HTTP}
		if r.PID, err = runningPID(n); err != nil {
			r.Error = err.Error()
		}
		r.Running = r.PID != 0
		if st, err := cl.StatusOf(ctx, n.HTTP); err != nil {
			if r.Error == "" {
				r.Error = probeReason(err)
			}
		} else {
			r.Status = st
		}
		reports[i] = r
	}
	for i, r := range reports {
		if !r.Running && removedByCluster(ctx, cl, reports, r.ID) {
			reports[i].Removed = true
			reports[i].Error = "removed from the cluster (kvctl cluster rejoin " + r.ID + " adds it again, empty)"
		}
	}
	if inv.opts.json {
		return writeJSON(inv.stdout, reports)
	}
	tw := tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tPROCESS\tHTTP\tROLE\tLEADER\tAPPLIED\tNOTE")
	for _, r := range reports {
		pid, process := "-", "stopped"
		if r.Running {
			pid, process = strconv.Itoa(r.PID), "running"
		}
		role, leader, applied := "-", "-", "-"
		if st := r.Status; st != nil {
			role, leader, applied = ownRole(st), dash(st.Leader), strconv.FormatUint(st.AppliedIndex, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, pid, process, r.HTTP, role, leader, applied, dash(r.Error))
	}
	return tw.Flush()
}

// ownRole is the role a node reports for itself.
func ownRole(st *client.StatusResponse) string {
	for _, m := range st.Nodes {
		if m.ID == st.Node && m.Role != "" {
			return m.Role
		}
	}
	if st.Leader != "" && st.Leader == st.Node {
		return "leader"
	}
	return "-"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
