package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The local cluster's layout (DESIGN.md, Interfaces): node i is "ni" and listens on 127.0.0.1,
// HTTP port B+i, Raft port B+100+i and gossip port B+200+i, where B is the base port (7000 unless
// cluster up --base-port moves the whole layout, so that two local clusters can run side by
// side). Its data, log and pid file live in DIR/ni; DIR/cluster.json records how every node is
// started, and the base port.
const (
	clusterFileName   = "cluster.json"
	clusterFileFormat = 1
	defaultBasePort   = 7000
	raftPortOffset    = 100
	gossipPortOffset  = 200
	// minBasePort keeps the nodes off the privileged ports; maxPort is the last TCP/UDP port.
	minBasePort = 1024
	maxPort     = 65535
	// maxLocalNodes keeps node i's ports inside their blocks: node 100 would take Raft's B+100.
	maxLocalNodes  = 99
	defaultNodes   = 3
	defaultDataDir = "./data"
)

// localPorts gives node i's HTTP, Raft and gossip ports from the base port: the blocks above.
// Tests point it at free ports, so that they never touch the ones a developer's own local
// cluster uses.
var localPorts = func(base, i int) (httpPort, raftPort, gossipPort int) {
	return base + i, base + raftPortOffset + i, base + gossipPortOffset + i
}

// checkBasePort refuses a base port whose blocks do not fit n nodes between minBasePort and
// maxPort.
func checkBasePort(base, n int) error {
	if top := maxPort - gossipPortOffset - n; base < minBasePort || base > top {
		return usageErrorf("--base-port must be between %d and %d for %d %s (node i takes B+i, B+%d+i and B+%d+i), not %d",
			minBasePort, top, n, plural(n, "node", "nodes"), raftPortOffset, gossipPortOffset, base)
	}
	return nil
}

// clusterFile is DIR/cluster.json: what `kvctl cluster up` started, so later commands (restart,
// down, status) know every node and can start one again exactly as before.
type clusterFile struct {
	Format int `json:"format"`
	// DataDir is absolute, so commands run from another directory find the same nodes.
	DataDir string `json:"data_dir"`
	// BasePort lays the nodes' ports out (node i: HTTP B+i, Raft B+100+i, gossip B+200+i), so
	// that cluster up on this directory starts them where they were. Files written before it
	// existed lack it: their clusters are on the default layout (basePort).
	BasePort int           `json:"base_port"`
	Nodes    []clusterNode `json:"nodes"`
}

// basePort is the base port c's nodes were laid out from; the default for a file without one.
func (c clusterFile) basePort() int {
	if c.BasePort == 0 {
		return defaultBasePort
	}
	return c.BasePort
}

// clusterNode is one local node and the kvd arguments that start it.
type clusterNode struct {
	ID     string   `json:"id"`
	HTTP   string   `json:"http"`
	Raft   string   `json:"raft"`
	Gossip string   `json:"gossip,omitempty"`
	Dir    string   `json:"dir"`
	Args   []string `json:"args"`
}

func (n clusterNode) pidPath() string { return filepath.Join(n.Dir, "kvd.pid") }
func (n clusterNode) logPath() string { return filepath.Join(n.Dir, "kvd.log") }

// planCluster lays out a cluster of n nodes from base port base under dataDir. Every node gets
// the same --bootstrap list, the initial voter set: kvd uses it only when it has no state yet, so
// restarting a node with the same arguments is safe, and nodes that all start fresh agree on one
// configuration.
//
// Node i also gets its own gossip address and the others' to join (kvd's default gossip address
// is one fixed port, so nodes on one host must each be given theirs), and the "local" gossip
// profile: on one host, failure detection can be fast.
func planCluster(n, base int, dataDir string) (clusterFile, error) {
	if n < 1 || n > maxLocalNodes {
		return clusterFile{}, usageErrorf("--nodes must be between 1 and %d, not %d", maxLocalNodes, n)
	}
	if err := checkBasePort(base, n); err != nil {
		return clusterFile{}, err
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return clusterFile{}, fmt.Errorf("data dir %q: %w", dataDir, err)
	}
	voters := make([]string, n)
	gossipAddrs := make([]string, n)
	for i := 1; i <= n; i++ {
		_, raftPort, gossipPort := localPorts(base, i)
		voters[i-1] = fmt.Sprintf("n%d=127.0.0.1:%d", i, raftPort)
		gossipAddrs[i-1] = fmt.Sprintf("127.0.0.1:%d", gossipPort)
	}
	bootstrap := strings.Join(voters, ",")
	c := clusterFile{Format: clusterFileFormat, DataDir: abs, BasePort: base}
	for i := 1; i <= n; i++ {
		httpPort, raftPort, _ := localPorts(base, i)
		node := clusterNode{
			ID:   fmt.Sprintf("n%d", i),
			HTTP: fmt.Sprintf("127.0.0.1:%d", httpPort),
			Raft: fmt.Sprintf("127.0.0.1:%d", raftPort),
		}
		node.Dir = filepath.Join(abs, node.ID)
		node.Args = []string{
			"--id", node.ID,
			"--http", node.HTTP,
			"--raft", node.Raft,
			"--data-dir", node.Dir,
			"--bootstrap", bootstrap,
		}
		node.Gossip = gossipAddrs[i-1]
		// The fault hook lets `kvctl cluster partition/slow/skew` act on these nodes: a local
		// cluster is for watching the trade-offs, never for production.
		node.Args = append(node.Args, "--gossip", node.Gossip, "--gossip-profile", "local", "--test-faults")
		if peers := slices.Delete(slices.Clone(gossipAddrs), i-1, i); len(peers) > 0 {
			node.Args = append(node.Args, "--gossip-join", strings.Join(peers, ","))
		}
		c.Nodes = append(c.Nodes, node)
	}
	return c, nil
}

// node returns the node with this id.
func (c clusterFile) node(id string) (clusterNode, error) {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n, nil
		}
	}
	ids := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		ids[i] = n.ID
	}
	return clusterNode{}, usageErrorf("no node %q in %s (nodes: %s)", id, filepath.Join(c.DataDir, clusterFileName), strings.Join(ids, ", "))
}

func (c clusterFile) httpAddrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.HTTP
	}
	return addrs
}

// localEndpoints is --endpoints' last default, "the local cluster": the HTTP addresses of the
// nodes dataDir/cluster.json lists, so that the key commands find a cluster started with
// --base-port as they find one on the default ports; the default layout's 7001-7003 when there
// is no readable cluster.json (nothing started there, or a cluster of another tool).
func localEndpoints(dataDir string) string {
	c, err := loadClusterFile(dataDir)
	if err != nil {
		return defaultEndpoints
	}
	return strings.Join(c.httpAddrs(), ",")
}

// loadClusterFile reads DIR/cluster.json. A missing file is an error wrapping fs.ErrNotExist.
func loadClusterFile(dataDir string) (clusterFile, error) {
	path := filepath.Join(dataDir, clusterFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return clusterFile{}, fmt.Errorf("reading %s: %w", path, err)
	}
	var c clusterFile
	if err := json.Unmarshal(b, &c); err != nil {
		return clusterFile{}, fmt.Errorf("%s is corrupt: %w", path, err)
	}
	if c.Format != clusterFileFormat {
		return clusterFile{}, fmt.Errorf("%s has format %d; this kvctl reads format %d", path, c.Format, clusterFileFormat)
	}
	if len(c.Nodes) == 0 {
		return clusterFile{}, fmt.Errorf("%s lists no nodes", path)
	}
	if !sameDir(c.DataDir, dataDir) {
		// Moved, or a copy (cp -r data data.bak): its nodes are the ones under dataDir, not
		// those where it was written, which may be another cluster's, running.
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return clusterFile{}, fmt.Errorf("data dir %q: %w", dataDir, err)
		}
		c.rebase(abs)
	}
	return c, nil
}

// rebase moves c's nodes, their directories and the --data-dir they are started with, under dir.
func (c *clusterFile) rebase(dir string) {
	c.DataDir = dir
	for i, n := range c.Nodes {
		n.Dir = filepath.Join(dir, n.ID)
		n.Args = slices.Clone(n.Args)
		if j := slices.Index(n.Args, "--data-dir"); j >= 0 && j+1 < len(n.Args) {
			n.Args[j+1] = n.Dir
		}
		c.Nodes[i] = n
	}
}

// loadCluster reads DIR/cluster.json, explaining a missing one.
func loadCluster(dataDir string) (clusterFile, error) {
	c, err := loadClusterFile(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("no local cluster in %s (no %s): start one with kvctl cluster up", dataDir, clusterFileName)
	}
	return c, err
}

func saveClusterFile(c clusterFile) error {
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(c.DataDir, clusterFileName)
	if err := writeFileAtomic(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// nodesInDir finds nodes by their pid files when DIR has no cluster.json (left from a crash or
// an older kvctl), so `cluster down` can still stop them.
func nodesInDir(dataDir string) ([]clusterNode, error) {
	matches, err := filepath.Glob(filepath.Join(dataDir, "*", "kvd.pid"))
	if err != nil {
		return nil, err
	}
	slices.Sort(matches)
	nodes := make([]clusterNode, 0, len(matches))
	for _, m := range matches {
		dir := filepath.Dir(m)
		nodes = append(nodes, clusterNode{ID: filepath.Base(dir), Dir: dir})
	}
	return nodes, nil
}
