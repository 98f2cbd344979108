package jepsen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/plant"
)

// Node is one cluster member as the harness reaches it.
type Node struct {
	ID string
	// HTTP is the node's API address, host:port, reachable from the harness.
	HTTP string
}

// Link is one direction of a network link: traffic from From to To.
type Link struct{ From, To string }

// Slowness is a slow, lossy network at one node: what it sends to the other nodes is delayed
// (fault hook) and lost (fault hook; nftables on netns). The harness's traffic is not touched.
type Slowness struct {
	Delay, Jitter time.Duration
	Loss          float64
}

// Backend runs a cluster of kvd processes and injects faults into it. Every method is safe
// for concurrent use. Node ids are n1..nN.
type Backend interface {
	// Name is netns, local or docker.
	Name() string
	// Nodes lists the members in id order.
	Nodes() []Node
	// Start starts every node and returns once they agree on a leader.
	Start(ctx context.Context) error
	// Kill sends SIGKILL to a node and waits until it is gone.
	Kill(ctx context.Context, id string) error
	// Restart starts a stopped or killed node again on its data, waits until it answers, and
	// puts its fault-hook faults back (a restarted kvd forgets them).
	Restart(ctx context.Context, id string) error
	// Remove takes a node out of the cluster through the API (another node forwards it to the
	// leader) and waits until the node has stopped itself, as a removed kvd does once it has
	// handed its uncommitted eventual writes over. Rejoin starts a removed node again from an
	// empty data directory with --join and waits until the cluster is whole. Removed reports
	// whether a node is removed and not yet rejoined.
	Remove(ctx context.Context, id string) error
	Rejoin(ctx context.Context, id string) error
	Removed(id string) bool
	// Pause stops a node with SIGSTOP; Resume continues it with SIGCONT.
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Running reports whether the node's process is alive (paused counts); Paused whether
	// it is stopped.
	Running(id string) bool
	Paused(id string) bool
	// Cut replaces the set of cut links (an empty set heals the network). Traffic on a cut
	// link is dropped silently at the receiving side, UDP and TCP.
	Cut(ctx context.Context, links []Link) error
	// Slow makes a node's links slow and lossy (zero Slowness: normal).
	Slow(ctx context.Context, id string, s Slowness) error
	// Clock shifts a node's clock (through the fault hook).
	Clock(ctx context.Context, id string, offset time.Duration) error
	// Unsafe switches the deliberately unsafe modes on every node, now and after restarts.
	Unsafe(ctx context.Context, strongReads, eventualCommit bool) error
	// FaultHook returns nil when every node's fault hook answers, else why it cannot be used.
	FaultHook() error
	// Close stops every node and removes everything the backend created. It is safe to call
	// more than once and after a failed Start.
	Close() error
}

// ClusterConfig is what both backends need to run kvd.
type ClusterConfig struct {
	// Nodes is the cluster size.
	Nodes int
	// Bin is the directory holding the kvd binary.
	Bin string
	// DataDir holds the nodes' data directories (created; removed by Close unless Keep).
	DataDir string
	// LogDir receives one log file per node (nI.log).
	LogDir string
	// Keep keeps DataDir after Close.
	Keep bool
	// LogLevel is kvd's --log-level.
	LogLevel string
	// LeaderWait is kvd's --leader-wait: how long a request waits for a leader before 503.
	LeaderWait time.Duration
	// Extra flags for every kvd.
	Extra []string
	// Env is added to every kvd's environment (NAME=value), e.g. DIALKV_PLANT.
	Env []string
	// Logf, when set, receives the backend's progress lines.
	Logf func(format string, args ...any)
}

// DefaultClusterConfig is 5 nodes with kvd from bin.
func DefaultClusterConfig(bin string) ClusterConfig {
	return ClusterConfig{Nodes: 5, Bin: bin, LogLevel: "info", LeaderWait: 1500 * time.Millisecond}
}

// Validate reports the first problem with the configuration.
func (c ClusterConfig) Validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > 9:
		return fmt.Errorf("nodes %d: want 1 to 9", c.Nodes)
	case c.Bin == "":
		return errors.New("no kvd directory (--bin)")
	case c.DataDir == "" || c.LogDir == "":
		return errors.New("data and log directories are required")
	}
	if _, err := os.Stat(filepath.Join(c.Bin, "kvd")); err != nil {
		return fmt.Errorf("kvd binary: %w (build it with: go build -tags hashicorpmetrics -o DIR/ ./cmd/kvd ./cmd/kvctl)", err)
	}
	return nil
}

// endpoints of one node: its three listen addresses.
type nodeAddrs struct {
	id, http, raft, gossip string
}

// linkCutter is how a backend cuts links; the local backend uses the fault hook instead.
type linkCutter interface {
	cut(ctx context.Context, links []Link) error
	// loss sets incoming packet loss at a node; false when this network cannot.
	loss(ctx context.Context, id string, p float64) (bool, error)
	close() error
}

// cluster is the machinery both backends share: kvd processes and the fault hook.
type cluster struct {
	name  string
	cfg   ClusterConfig
	addrs []nodeAddrs
	procs map[string]*proc
	// prefix is put before the kvd command line of a node (ip netns exec NS).
	prefix func(id string) []string
	net    linkCutter // nil: links are cut through the fault hook
	label  string
	hook   *FaultClient

	mu sync.Mutex
	// hasHookFlag: this kvd knows --test-faults.
	hasHookFlag bool
	hookErr     error
	// faults are the fault-hook faults each node should have; dirty ones could not be set yet
	// (node down or paused) and are pushed when it comes back.
	faults map[string]Faults
	dirty  map[string]bool
	// removed are the nodes taken out of the cluster and not yet rejoined (member.go).
	removed map[string]bool
	closed  bool
}

func newCluster(name string, cfg ClusterConfig, addrs []nodeAddrs, label string) *cluster {
	c := &cluster{name: name, cfg: cfg, addrs: addrs, procs: map[string]*proc{}, label: label,
		hook: NewFaultClient(2 * time.Second), faults: map[string]Faults{}, dirty: map[string]bool{}, removed: map[string]bool{},
		prefix: func(string) []string { return nil }}
	return c
}

func (c *cluster) logf(format string, args ...any) {
	if c.cfg.Logf != nil {
		c.cfg.Logf(format, args...)
	}
}

func (c *cluster) Name() string { return c.name }

func (c *cluster) Nodes() []Node {
	out := make([]Node, len(c.addrs))
	for i, a := range c.addrs {
		out[i] = Node{ID: a.id, HTTP: a.http}
	}
	return out
}

func (c *cluster) addr(id string) (nodeAddrs, error) {
	for _, a := range c.addrs {
		if a.id == id {
			return a, nil
		}
	}
	return nodeAddrs{}, fmt.Errorf("no node %q", id)
}

// kvdHelp is what the kvd binary in bin prints for -h.
func kvdHelp(bin string) []byte {
	out, _ := exec.Command(filepath.Join(bin, "kvd"), "-h").CombinedOutput()
	return out
}

// kvdSupportsFaults asks the kvd binary whether it has the --test-faults flag.
func kvdSupportsFaults(bin string) bool {
	return bytes.Contains(kvdHelp(bin), []byte("-test-faults"))
}

// kvdPlantable asks the kvd binary whether it is a plantbugs build (internal/plant): only its
// help names DIALKV_PLANT.
func kvdPlantable(bin string) bool {
	return bytes.Contains(kvdHelp(bin), []byte(plant.EnvVar+"="))
}

// args is node a's kvd command line: bootstrapping with the others, or, with join (a member's
// HTTP address), joining through it from an empty data directory.
func (c *cluster) args(a nodeAddrs, join string) []string {
	boot, gossip := peerArgs(c.addrs, a.id)
	start := []string{"--bootstrap", boot}
	if join != "" {
		start = []string{"--join", join}
	}
	argv := append(c.prefix(a.id), filepath.Join(c.cfg.Bin, "kvd"),
		"--id", a.id, "--http", a.http, "--raft", a.raft, "--gossip", a.gossip,
		"--gossip-join", gossip, "--gossip-profile", "local")
	argv = append(argv, start...)
	argv = append(argv, "--data-dir", filepath.Join(c.cfg.DataDir, a.id),
		"--cluster-label", c.label, "--log-level", c.cfg.LogLevel)
	if c.cfg.LeaderWait > 0 {
		argv = append(argv, "--leader-wait", c.cfg.LeaderWait.String())
	}
	if c.hasHookFlag {
		argv = append(argv, "--test-faults")
	}
	return append(argv, c.cfg.Extra...)
}

// startAll starts every node and waits for a leader they agree on.
func (c *cluster) startAll(ctx context.Context) error {
	if err := os.MkdirAll(c.cfg.DataDir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(c.cfg.LogDir, 0o755); err != nil {
		return err
	}
	c.hasHookFlag = kvdSupportsFaults(c.cfg.Bin)
	for _, a := range c.addrs {
		p := &proc{id: a.id, argv: c.args(a, ""), env: c.cfg.Env, logPath: filepath.Join(c.cfg.LogDir, a.id+".log")}
		c.procs[a.id] = p
		if err := p.start(); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	leader, err := c.waitReady(wctx)
	if err != nil {
		return err
	}
	c.logf("%s cluster of %d nodes up, leader %s", c.name, len(c.addrs), leader)
	c.probeHook(ctx)
	return nil
}

// probeHook finds out whether the fault hook answers on every node.
func (c *cluster) probeHook(ctx context.Context) {
	var err error
	if !c.hasHookFlag {
		err = fmt.Errorf("%w (kvd in %s has no --test-faults flag yet)", ErrNoFaultHook, c.cfg.Bin)
	} else {
		for _, a := range c.addrs {
			if _, e := c.hook.Get(ctx, a.http); e != nil {
				err = e
				break
			}
		}
	}
	c.mu.Lock()
	c.hookErr = err
	c.mu.Unlock()
	if err != nil {
		c.logf("fault hook unavailable: %v", err)
	}
}

func (c *cluster) FaultHook() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hookErr
}

// waitReady polls until every running node names the same leader and the leader lists every
// node, none down. It returns the leader.
func (c *cluster) waitReady(ctx context.Context) (string, error) {
	cl := statusClient(c.Nodes())
	var last string
	for {
		for id, p := range c.procs {
			select {
			case <-p.exited():
				return "", fmt.Errorf("%s exited while starting; its log ends:\n%s", id, p.logTail(15))
			default:
			}
		}
		leader, state := clusterState(ctx, cl, c.Nodes(), func(id string) bool { return c.Running(id) && !c.Paused(id) })
		if leader != "" {
			return leader, nil
		}
		last = state
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("cluster not ready: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// statusClient is a client used to ask one node at a time for its status, quickly.
func statusClient(nodes []Node) *client.Client {
	cfg := client.DefaultConfig()
	cfg.Endpoints = nil
	for _, n := range nodes {
		cfg.Endpoints = append(cfg.Endpoints, n.HTTP)
	}
	cfg.Timeout = time.Second
	cfg.DialTimeout = 500 * time.Millisecond
	cl, err := client.New(cfg)
	if err != nil {
		panic(err) // the endpoints are ours and valid
	}
	return cl
}

// clusterState asks the live nodes for their status: it returns the leader when they all
// agree on one and the leader sees every node up and none still joining, else "" and what is
// missing.
func clusterState(ctx context.Context, cl *client.Client, nodes []Node, live func(string) bool) (string, string) {
	leaders := map[string]int{}
	views := map[string]*client.StatusResponse{}
	var problems []string
	for _, n := range nodes {
		if !live(n.ID) {
			continue
		}
		st, err := cl.StatusOf(ctx, n.HTTP)
		if err != nil {
			problems = append(problems, n.ID+" not answering")
			continue
		}
		views[n.ID] = st
		if st.Leader == "" {
			problems = append(problems, n.ID+" has no leader")
			continue
		}
		leaders[st.Leader]++
	}
	if len(problems) > 0 || len(leaders) != 1 {
		if len(leaders) > 1 {
			problems = append(problems, fmt.Sprintf("nodes disagree on the leader %v", leaders))
		}
		return "", strings.Join(problems, "; ")
	}
	var leader string
	for l := range leaders {
		leader = l
	}
	view := views[leader]
	if view == nil {
		return "", "leader " + leader + " is not answering"
	}
	down, joining := map[string]bool{}, map[string]bool{}
	for _, m := range view.Nodes {
		down[m.ID] = m.Health == "down"
		joining[m.ID] = m.Joining
	}
	for _, n := range nodes {
		switch {
		case live(n.ID) && down[n.ID]:
			problems = append(problems, n.ID+" down in the leader's view")
		case live(n.ID) && joining[n.ID]:
			problems = append(problems, n.ID+" joining in the leader's view (takes no eventual writes yet)")
		}
	}
	if len(problems) > 0 {
		return "", strings.Join(problems, "; ")
	}
	return leader, "ok"
}

func (c *cluster) proc(id string) (*proc, error) {
	p, ok := c.procs[id]
	if !ok {
		return nil, fmt.Errorf("no node %q", id)
	}
	return p, nil
}

func (c *cluster) Running(id string) bool {
	p, err := c.proc(id)
	return err == nil && p.running()
}

func (c *cluster) Paused(id string) bool {
	p, err := c.proc(id)
	return err == nil && p.isPaused()
}

func (c *cluster) Kill(_ context.Context, id string) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	return p.kill(10 * time.Second)
}

func (c *cluster) Restart(ctx context.Context, id string) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	if p.running() {
		return nil
	}
	if err := p.start(); err != nil {
		return err
	}
	a, _ := c.addr(id)
	cl := statusClient([]Node{{ID: id, HTTP: a.http}})
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		if _, err := cl.StatusOf(wctx, a.http); err == nil {
			break
		}
		select {
		case <-p.exited():
			return fmt.Errorf("%s exited after restart; its log ends:\n%s", id, p.logTail(15))
		case <-wctx.Done():
			return fmt.Errorf("%s not answering 20s after restart", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.mu.Lock()
	c.dirty[id] = !c.faults[id].IsZero()
	c.mu.Unlock()
	return c.pushDirty(ctx)
}

func (c *cluster) Pause(_ context.Context, id string) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	return p.pause()
}

func (c *cluster) Resume(ctx context.Context, id string) error {
	p, err := c.proc(id)
	if err != nil {
		return err
	}
	if err := p.resume(); err != nil {
		return err
	}
	return c.pushDirty(ctx)
}

// setFaults changes the wanted faults of the named nodes with edit and pushes them.
func (c *cluster) setFaults(ctx context.Context, ids []string, edit func(id string, f *Faults)) error {
	if err := c.FaultHook(); err != nil {
		return err
	}
	c.mu.Lock()
	for _, id := range ids {
		f := c.faults[id]
		edit(id, &f)
		if !f.Equal(c.faults[id]) {
			c.faults[id] = f
			c.dirty[id] = true
		}
	}
	c.mu.Unlock()
	return c.pushDirty(ctx)
}

// pushDirty sends the wanted faults to every node whose faults changed, in parallel. A node
// that is down or paused keeps its faults pending (they go out on Restart or Resume).
func (c *cluster) pushDirty(ctx context.Context) error {
	if c.FaultHook() != nil {
		return nil
	}
	c.mu.Lock()
	todo := map[string]Faults{}
	for id, d := range c.dirty {
		if d && c.Running(id) && !c.Paused(id) {
			todo[id] = c.faults[id]
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for id, f := range todo {
		a, _ := c.addr(id)
		wg.Go(func() {
			var err error
			if f.IsZero() {
				err = c.hook.Heal(ctx, a.http)
			} else {
				_, err = c.hook.Set(ctx, a.http, f)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if c.Running(id) && !c.Paused(id) {
					errs = append(errs, err)
				}
				return
			}
			c.mu.Lock()
			if c.faults[id].Equal(f) {
				c.dirty[id] = false
			}
			c.mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *cluster) ids() []string {
	ids := make([]string, len(c.addrs))
	for i, a := range c.addrs {
		ids[i] = a.id
	}
	return ids
}

func (c *cluster) Cut(ctx context.Context, links []Link) error {
	if c.net != nil {
		return c.net.cut(ctx, links)
	}
	in, out := map[string][]string{}, map[string][]string{}
	for _, l := range links {
		in[l.To] = append(in[l.To], l.From)
		out[l.From] = append(out[l.From], l.To)
	}
	return c.setFaults(ctx, c.ids(), func(id string, f *Faults) {
		f.DropIn, f.DropOut = sortedUnique(in[id]), sortedUnique(out[id])
	})
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

func (c *cluster) Slow(ctx context.Context, id string, s Slowness) error {
	loss := s.Loss
	if c.net != nil {
		handled, err := c.net.loss(ctx, id, s.Loss)
		if err != nil {
			return err
		}
		if handled {
			loss = 0
		}
		if s.Delay == 0 && s.Jitter == 0 && c.FaultHook() != nil {
			return nil // loss alone needs no hook here
		}
	}
	return c.setFaults(ctx, []string{id}, func(_ string, f *Faults) {
		f.Delay, f.Jitter, f.Loss = s.Delay, s.Jitter, loss
	})
}

func (c *cluster) Clock(ctx context.Context, id string, offset time.Duration) error {
	return c.setFaults(ctx, []string{id}, func(_ string, f *Faults) { f.ClockOffset = offset })
}

func (c *cluster) Unsafe(ctx context.Context, strongReads, eventualCommit bool) error {
	return c.setFaults(ctx, c.ids(), func(_ string, f *Faults) {
		f.UnsafeStrongReads, f.UnsafeEventualCommit = strongReads, eventualCommit
	})
}

// closeProcs stops every node (SIGTERM, then SIGKILL) in parallel.
func (c *cluster) closeProcs() error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, p := range c.procs {
		wg.Go(func() {
			if err := p.stop(10 * time.Second); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closeAll stops the nodes, tears down the network and removes the data unless kept.
func (c *cluster) closeAll() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	errs := []error{c.closeProcs()}
	if c.net != nil {
		errs = append(errs, c.net.close())
	}
	if !c.cfg.Keep && c.cfg.DataDir != "" {
		errs = append(errs, os.RemoveAll(c.cfg.DataDir))
	}
	return errors.Join(errs...)
}

// randomID is 6 random hex digits: unique names for one run's cluster label, namespaces and
// interfaces.
func randomID() string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// NewBackend returns the named backend ("netns", "local" or "docker"); nothing runs until Start.
func NewBackend(name string, cfg ClusterConfig) (Backend, error) {
	switch name {
	case "netns":
		return newNetns(cfg)
	case "local":
		return NewLocal(cfg)
	case "docker":
		return NewDocker(cfg)
	}
	return nil, fmt.Errorf("unknown backend %q: want netns, local or docker", name)
}

// DefaultBackend is netns when it can run here (Linux and root, with ip and nft or apt-get to
// install them: see EnsureNetnsTools), else local.
func DefaultBackend() string {
	if NetnsAvailable() == nil {
		return "netns"
	}
	if runtime.GOOS == "linux" && os.Geteuid() == 0 {
		if _, err := exec.LookPath("apt-get"); err == nil {
			return "netns"
		}
	}
	return "local"
}

// statusOf is a short status call to one node.
func statusOf(ctx context.Context, cl *client.Client, n Node) (*client.StatusResponse, error) {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cl.StatusOf(qctx, n.HTTP)
}
