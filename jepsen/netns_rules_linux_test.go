package jepsen

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sysSetns is setns(2)'s number (the syscall package does not name it).
var sysSetns = map[string]uintptr{"amd64": 308, "arm64": 268, "riscv64": 268, "386": 346, "arm": 375}

// inNetns runs f on an OS thread moved into the named network namespace ("" is the harness's
// own): sockets f creates live there. The thread is never handed back to the scheduler; it
// ends with the goroutine.
func inNetns(ns string, f func() error) error {
	if ns == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread dies with this goroutine
		fd, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer fd.Close()
		if _, _, e := syscall.RawSyscall(sysSetns[runtime.GOARCH], fd.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
			errc <- fmt.Errorf("setns %s: %w", ns, e)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// netProbe is a TCP echo and UDP sink on one node's address, inside its namespace.
type netProbe struct {
	addr string
	ln   net.Listener
	pc   net.PacketConn
	mu   sync.Mutex
	got  map[string]bool // UDP tokens received
}

func startProbe(t *testing.T, ns, ip string) *netProbe {
	t.Helper()
	p := &netProbe{addr: net.JoinHostPort(ip, "9000"), got: map[string]bool{}}
	err := inNetns(ns, func() error {
		var err error
		if p.ln, err = net.Listen("tcp", p.addr); err != nil {
			return err
		}
		p.pc, err = net.ListenPacket("udp", p.addr)
		return err
	})
	if err != nil {
		t.Fatalf("probe on %s in %s: %v", p.addr, ns, err)
	}
	t.Cleanup(func() { p.ln.Close(); p.pc.Close() })
	go func() {
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := p.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.got[string(buf[:n])] = true
			p.mu.Unlock()
		}
	}()
	return p
}

// tcpRound reports whether a TCP connection from namespace ns to p carries a byte there and back.
func tcpRound(ns string, p *netProbe) bool {
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", p.addr, 700*time.Millisecond)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(700 * time.Millisecond))
		if _, err := c.Write([]byte{1}); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 1))
		return err
	}) == nil
}

var udpToken struct {
	sync.Mutex
	n int
}

// udpArrives reports whether a datagram sent from namespace ns reaches p (one way only).
func udpArrives(t *testing.T, ns string, p *netProbe) bool {
	t.Helper()
	udpToken.Lock()
	udpToken.n++
	token := fmt.Sprintf("t%d", udpToken.n)
	udpToken.Unlock()
	err := inNetns(ns, func() error {
		c, err := net.Dial("udp", p.addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(token))
		return err
	})
	if err != nil {
		t.Fatalf("udp from %q to %s: %v", ns, p.addr, err)
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		p.mu.Lock()
		ok := p.got[token]
		p.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return ok
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNetnsRulesCutAndHeal builds a netns run's network (no kvd) and sends real packets
// through it: a cut link drops exactly its direction, a lossy node loses what it sends to the
// other nodes, the harness reaches every node whatever is cut or lossy, a heal restores every
// path and leaves no rule behind, and Close removes the namespaces. Root and Linux only.
func TestNetnsRulesCutAndHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	if err := NetnsAvailable(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	if sysSetns[runtime.GOARCH] == 0 {
		t.Skipf("skipped: no setns number for %s", runtime.GOARCH)
	}
	n := newNetnsBackend(ClusterConfig{Nodes: 3, DataDir: t.TempDir(), LogDir: t.TempDir()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	if err := n.startNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	probes := map[string]*netProbe{}
	for i, id := range []string{"n1", "n2", "n3"} {
		probes[id] = startProbe(t, n.nodeNS(id), n.nodeAddr(i+1).String())
	}
	ns := n.nodeNS
	expect := func(what string, got, want bool) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	harnessReachesAll := func(when string) {
		t.Helper()
		for _, id := range []string{"n1", "n2", "n3"} {
			expect(when+": harness -> "+id+" tcp", tcpRound("", probes[id]), true)
		}
	}

	expect("healthy: n1 -> n2 udp", udpArrives(t, ns("n1"), probes["n2"]), true)
	expect("healthy: n1 -> n2 tcp", tcpRound(ns("n1"), probes["n2"]), true)
	harnessReachesAll("healthy")

	if err := n.Cut(ctx, []Link{{"n1", "n2"}}); err != nil {
		t.Fatal(err)
	}
	expect("cut n1->n2: n1 -> n2 udp", udpArrives(t, ns("n1"), probes["n2"]), false)
	expect("cut n1->n2: n2 -> n1 udp", udpArrives(t, ns("n2"), probes["n1"]), true)
	expect("cut n1->n2: n1 -> n2 tcp", tcpRound(ns("n1"), probes["n2"]), false)
	// No TCP handshake completes with one way cut: n2's connections to n1 fail too.
	expect("cut n1->n2: n2 -> n1 tcp", tcpRound(ns("n2"), probes["n1"]), false)
	expect("cut n1->n2: n1 -> n3 tcp", tcpRound(ns("n1"), probes["n3"]), true)
	harnessReachesAll("cut n1->n2")

	if err := n.Cut(ctx, cutsBetween([]string{"n3"}, []string{"n1", "n2"})); err != nil {
		t.Fatal(err)
	}
	expect("n3 isolated: the earlier cut n1 -> n2 udp", udpArrives(t, ns("n1"), probes["n2"]), true)
	expect("n3 isolated: n3 -> n1 udp", udpArrives(t, ns("n3"), probes["n1"]), false)
	expect("n3 isolated: n2 -> n3 udp", udpArrives(t, ns("n2"), probes["n3"]), false)
	harnessReachesAll("n3 isolated")
	if err := n.Cut(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// Total loss at n3: what n3 sends to the other nodes is lost, as through the fault hook.
	if err := n.Slow(ctx, "n3", Slowness{Loss: 1}); err != nil {
		t.Fatal(err)
	}
	expect("lossy n3: n3 -> n1 udp", udpArrives(t, ns("n3"), probes["n1"]), false)
	expect("lossy n3: n1 -> n3 udp", udpArrives(t, ns("n1"), probes["n3"]), true)
	expect("lossy n3: n1 -> n2 udp", udpArrives(t, ns("n1"), probes["n2"]), true)
	harnessReachesAll("lossy n3")

	if err := n.Cut(ctx, cutsBetween([]string{"n1"}, []string{"n2", "n3"})); err != nil {
		t.Fatal(err)
	}
	// What HealAll does to the network (it also restarts nodes, and there are none here).
	if err := n.Cut(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		if err := n.Slow(ctx, id, Slowness{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, from := range []string{"n1", "n2", "n3"} {
		for _, to := range []string{"n1", "n2", "n3"} {
			if from != to {
				expect("healed: "+from+" -> "+to+" tcp", tcpRound(ns(from), probes[to]), true)
			}
		}
	}
	harnessReachesAll("healed")
	out, err := exec.Command("ip", "netns", "exec", n.hub, "nft", "list", "table", "bridge", n.table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v %s", err, out)
	}
	if strings.Contains(string(out), "elements") || strings.Contains(string(out), "saddr 10.") {
		t.Errorf("rules left after the heal:\n%s", out)
	}

	closed = true
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	list, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(list), "dkv-"+n.rid) {
		t.Errorf("namespaces left after Close:\n%s", list)
	}
	if err := exec.Command("ip", "link", "show", n.hostVeth).Run(); err == nil {
		t.Errorf("host veth %s left after Close", n.hostVeth)
	}
	if _, err := os.Stat("/run/netns/" + n.hub); !os.IsNotExist(err) {
		t.Errorf("hub namespace still mounted after Close: %v", err)
	}
}
