package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// netnsBackend runs each kvd in a network namespace of its own. The namespaces hang off a Linux
// bridge that lives in a hub namespace the harness creates (not in the host's namespace: there,
// br_netfilter would hand bridged packets to the host's iptables FORWARD chain, which Docker
// sets to drop). The harness reaches the nodes through a veth pair from the host into the hub,
// whose host end has an address in the run's /24. Links are cut by nftables rules in the hub
// (see nftRuleset). Everything is named dkv-<run id>-... and removed by Close; a run killed
// before it could clean up is removed by CleanStale.
//
// Only addresses inside a 10.77.X.0/24 that nothing on the host uses are assigned, only inside
// the namespaces created here plus the host end of the veth; no default route is set anywhere.
type netnsBackend struct {
	*cluster
	rid      string
	hub      string
	hostVeth string
	prefix   netip.Prefix
	table    string
	locks    []*os.File

	nmu    sync.Mutex
	cuts   []Link
	lossAt map[string]float64
	nsCmd  func(ctx context.Context, args ...string) error
	// created lists namespaces made, for cleanup.
	created []string
}

// NetnsAvailable returns nil when the netns backend can run here without installing anything:
// Linux, root, and the ip and nft commands.
func NetnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("the netns backend needs root (network namespaces, veth pairs, nftables)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the netns backend needs %q (apt-get install -y iproute2 nftables)", tool)
		}
	}
	return nil
}

// EnsureNetnsTools installs iproute2 and nftables with apt-get when ip or nft is missing.
func EnsureNetnsTools(ctx context.Context, logf func(string, ...any)) error {
	if os.Geteuid() != 0 {
		return NetnsAvailable()
	}
	var missing []string
	for tool, pkg := range map[string]string{"ip": "iproute2", "nft": "nftables"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("missing %s and no apt-get to install it", strings.Join(missing, ", "))
	}
	logf("installing %s with apt-get", strings.Join(missing, " "))
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 10))
		}
	}
	return NetnsAvailable()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newNetns returns a netns backend; nothing is created until Start.
func newNetns(cfg ClusterConfig) (Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := NetnsAvailable(); err != nil {
		return nil, err
	}
	return newNetnsBackend(cfg), nil
}

// newNetnsBackend is newNetns without the checks.
func newNetnsBackend(cfg ClusterConfig) *netnsBackend {
	rid := randomID()
	n := &netnsBackend{rid: rid, hub: "dkv-" + rid + "-hub", hostVeth: "dkv" + rid, table: "dkv", lossAt: map[string]float64{}}
	n.nsCmd = n.run
	n.cluster = newCluster("netns", cfg, nil, "kvjepsen-"+rid)
	n.cluster.net = n
	n.cluster.prefix = func(id string) []string { return []string{ipPath(), "netns", "exec", n.nodeNS(id)} }
	return n
}

func ipPath() string {
	if p, err := exec.LookPath("ip"); err == nil {
		return p
	}
	return "ip"
}

func (n *netnsBackend) nodeNS(id string) string { return "dkv-" + n.rid + "-" + id }

// run runs one command (ip, nft), failing with its output.
func (n *netnsBackend) run(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lockFile takes an exclusive, non-blocking flock on path; the kernel releases it when this
// process dies, which is how CleanStale tells a live run from a dead one.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func lockDir() string { return os.TempDir() }

// pickSubnet chooses a 10.77.X.0/24 that no address or route on the host overlaps and no other
// run holds, and locks it for this run.
func (n *netnsBackend) pickSubnet(ctx context.Context) error {
	used, err := hostPrefixes(ctx)
	if err != nil {
		return err
	}
	start := rand.IntN(256)
	for i := range 256 {
		x := (start + i) % 256
		p := netip.MustParsePrefix(fmt.Sprintf("10.77.%d.0/24", x))
		clash := false
		for _, u := range used {
			if u.Overlaps(p) {
				clash = true
				break
			}
		}
		if clash {
			continue
		}
		f, err := lockFile(filepath.Join(lockDir(), fmt.Sprintf("dialkv-jepsen-subnet-10.77.%d.lock", x)))
		if err != nil {
			continue
		}
		n.locks = append(n.locks, f)
		n.prefix = p
		return nil
	}
	return errors.New("no free 10.77.X.0/24 subnet on this host")
}

// hostPrefixes lists the IPv4 prefixes of the host's addresses and routes (default route
// excluded: it overlaps everything by design and is not an address we could clash with).
func hostPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, args := range [][]string{{"-4", "-o", "addr", "show"}, {"-4", "route", "show", "table", "all"}} {
		b, err := exec.CommandContext(ctx, "ip", args...).Output()
		if err != nil {
			return nil, fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
		}
		for _, f := range strings.Fields(string(b)) {
			if !strings.Contains(f, ".") {
				continue
			}
			if p, err := netip.ParsePrefix(f); err == nil {
				out = append(out, p.Masked())
			} else if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
				out = append(out, netip.PrefixFrom(a, 32))
			}
		}
	}
	return out, nil
}

func (n *netnsBackend) nodeAddr(i int) netip.Addr {
	a := n.prefix.Addr().As4()
	a[3] = byte(10 + i)
	return netip.AddrFrom4(a)
}

// Start builds the network and starts the nodes. On failure it removes what it built.
func (n *netnsBackend) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	if err := n.startNetwork(ctx); err != nil {
		return err
	}
	return n.startAll(ctx)
}

// startNetwork takes the run lock, picks the subnet and builds the namespaces, the bridge and
// the (empty) rules; Close removes them.
func (n *netnsBackend) startNetwork(ctx context.Context) error {
	lock, err := lockFile(filepath.Join(lockDir(), "dialkv-jepsen-"+n.rid+".lock"))
	if err != nil {
		return fmt.Errorf("run lock: %w", err)
	}
	n.locks = append(n.locks, lock)
	if err := n.pickSubnet(ctx); err != nil {
		return err
	}
	for i := 1; i <= n.cfg.Nodes; i++ {
		ip := n.nodeAddr(i).String()
		n.addrs = append(n.addrs, nodeAddrs{id: fmt.Sprintf("n%d", i), http: ip + ":7000", raft: ip + ":7100", gossip: ip + ":7200"})
	}
	if err := n.buildNetwork(ctx); err != nil {
		return err
	}
	n.logf("netns network up: %s, hub %s, host side %s", n.prefix, n.hub, n.hostVeth)
	return nil
}

func (n *netnsBackend) addNS(ctx context.Context, name string) error {
	if err := n.nsCmd(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	n.nmu.Lock()
	n.created = append(n.created, name)
	n.nmu.Unlock()
	return n.nsCmd(ctx, "ip", "-n", name, "link", "set", "lo", "up")
}

func (n *netnsBackend) buildNetwork(ctx context.Context) error {
	bits := n.prefix.Bits()
	if err := n.addNS(ctx, n.hub); err != nil {
		return err
	}
	steps := [][]string{
		{"ip", "-n", n.hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", n.hub, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := n.nsCmd(ctx, s...); err != nil {
			return err
		}
	}
	for i, a := range n.addrs {
		ns := n.nodeNS(a.id)
		if err := n.addNS(ctx, ns); err != nil {
			return err
		}
		addr := fmt.Sprintf("%s/%d", n.nodeAddr(i+1), bits)
		for _, s := range [][]string{
			{"ip", "link", "add", a.id, "netns", n.hub, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"ip", "-n", n.hub, "link", "set", a.id, "master", "br0", "up"},
			{"ip", "-n", ns, "addr", "add", addr, "dev", "eth0"},
			{"ip", "-n", ns, "link", "set", "eth0", "up"},
		} {
			if err := n.nsCmd(ctx, s...); err != nil {
				return err
			}
		}
	}
	hostAddr := n.prefix.Addr().As4()
	hostAddr[3] = 254
	for _, s := range [][]string{
		{"ip", "link", "add", n.hostVeth, "type", "veth", "peer", "name", "host", "netns", n.hub},
		{"ip", "-n", n.hub, "link", "set", "host", "master", "br0", "up"},
		{"ip", "addr", "add", fmt.Sprintf("%s/%d", netip.AddrFrom4(hostAddr), bits), "dev", n.hostVeth},
		{"ip", "link", "set", n.hostVeth, "up"},
	} {
		if err := n.nsCmd(ctx, s...); err != nil {
			return err
		}
	}
	return n.loadRules(ctx)
}

func (n *netnsBackend) addrMap() map[string]string {
	m := map[string]string{}
	for i, a := range n.addrs {
		m[a.id] = n.nodeAddr(i + 1).String()
	}
	return m
}

// loadRules replaces the hub's nftables table with the current cuts and losses.
func (n *netnsBackend) loadRules(ctx context.Context) error {
	n.nmu.Lock()
	rules, err := nftRuleset(n.table, n.addrMap(), n.cuts, n.lossAt)
	n.nmu.Unlock()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, ipPath(), "netns", "exec", n.hub, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f in %s: %v: %s\nruleset:\n%s", n.hub, err, strings.TrimSpace(string(out)), rules)
	}
	return nil
}

func (n *netnsBackend) cut(ctx context.Context, links []Link) error {
	n.nmu.Lock()
	n.cuts = append([]Link(nil), links...)
	n.nmu.Unlock()
	return n.loadRules(ctx)
}

func (n *netnsBackend) loss(ctx context.Context, id string, p float64) (bool, error) {
	n.nmu.Lock()
	if p > 0 {
		n.lossAt[id] = p
	} else {
		delete(n.lossAt, id)
	}
	n.nmu.Unlock()
	return true, n.loadRules(ctx)
}

// close deletes the namespaces (their veths and the bridge go with them), the host veth if it
// survived, and releases the locks. The caller has stopped the processes.
func (n *netnsBackend) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	n.nmu.Lock()
	created := append([]string(nil), n.created...)
	n.created = nil
	n.nmu.Unlock()
	for i := len(created) - 1; i >= 0; i-- {
		killNamespacePids(ctx, created[i])
		if err := n.run(ctx, "ip", "netns", "del", created[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if exec.CommandContext(ctx, "ip", "link", "show", n.hostVeth).Run() == nil {
		_ = n.run(ctx, "ip", "link", "del", n.hostVeth)
	}
	for _, f := range n.locks {
		// Removing the file before unlocking is safe: a run that opens the path afterwards
		// gets a new file, and this run no longer needs the old one.
		os.Remove(f.Name())
		f.Close()
	}
	n.locks = nil
	return errors.Join(errs...)
}

// killNamespacePids SIGKILLs whatever still runs in a namespace (the namespace cannot go away
// while a process holds it).
func killNamespacePids(ctx context.Context, ns string) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Close stops the nodes and removes the namespaces, the bridge, the rules and the data.
func (n *netnsBackend) Close() error { return n.closeAll() }

var staleNS = regexp.MustCompile(`^dkv-([0-9a-f]{6})-(hub|n[0-9]+)$`)

// CleanStale removes namespaces and interfaces that runs killed before their cleanup left
// behind: those whose run lock no live process holds. It returns what it removed.
func CleanStale(ctx context.Context) ([]string, error) {
	if err := NetnsAvailable(); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, err
	}
	byRun := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if m := staleNS.FindStringSubmatch(f[0]); m != nil {
			byRun[m[1]] = append(byRun[m[1]], f[0])
		}
	}
	var removed []string
	var errs []error
	for rid, names := range byRun {
		lockPath := filepath.Join(lockDir(), "dialkv-jepsen-"+rid+".lock")
		lock, err := lockFile(lockPath)
		if err != nil {
			continue // a live run holds it
		}
		for _, ns := range names {
			killNamespacePids(ctx, ns)
			if out, err := exec.CommandContext(ctx, "ip", "netns", "del", ns).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, out))
				continue
			}
			removed = append(removed, ns)
		}
		if exec.CommandContext(ctx, "ip", "link", "show", "dkv"+rid).Run() == nil {
			_ = exec.CommandContext(ctx, "ip", "link", "del", "dkv"+rid).Run()
			removed = append(removed, "dkv"+rid)
		}
		os.Remove(lockPath)
		lock.Close()
	}
	// Subnet locks of dead runs (the run lock does not say which subnet a run had).
	locks, _ := filepath.Glob(filepath.Join(lockDir(), "dialkv-jepsen-subnet-*.lock"))
	for _, path := range locks {
		if lock, err := lockFile(path); err == nil {
			os.Remove(path)
			lock.Close()
		}
	}
	return removed, errors.Join(errs...)
}
