package systemtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/freeport"
)

// binDir holds kvd and kvctl built for this run.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() || os.Getenv("DIALKV_SKIP_SYSTEM") != "" {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "dialkv-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-tags", "hashicorpmetrics", "-o", dir+"/",
			"github.com/dialkv/dialkv/cmd/kvd", "github.com/dialkv/dialkv/cmd/kvctl")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building kvd and kvctl:", err)
			return 1
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

func needBinaries(t *testing.T) {
	t.Helper()
	if testing.Short() || binDir == "" {
		t.Skip("system test: skipped with -short (it starts real kvd processes)")
	}
}

// proc is one kvd process of a cluster, restartable on its data dir.
type proc struct {
	id, http, raft, gossip, dir string
	args                        []string
	cmd                         *exec.Cmd
	exited                      chan struct{}
}

type cluster struct {
	t     *testing.T
	procs []*proc
}

// freePort is a loopback address for a node, below the kernel's ephemeral range so that no
// outgoing connection takes it while the node is stopped (tests restart nodes on their ports).
func freePort(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startCluster starts n kvd processes bootstrapped as one cluster, and waits for a leader.
func startCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	needBinaries(t)
	c := &cluster{t: t}
	root := t.TempDir()
	var peers []string
	for i := 1; i <= n; i++ {
		p := &proc{id: fmt.Sprintf("n%d", i), http: freePort(t), raft: freePort(t), gossip: freePort(t)}
		p.dir = filepath.Join(root, p.id)
		c.procs = append(c.procs, p)
		peers = append(peers, p.id+"="+p.raft)
	}
	for _, p := range c.procs {
		var others []string
		for _, q := range c.procs {
			if q != p {
				others = append(others, q.gossip)
			}
		}
		p.args = append([]string{"--id", p.id, "--http", p.http, "--raft", p.raft, "--data-dir", p.dir,
			"--bootstrap", strings.Join(peers, ","), "--gossip", p.gossip, "--gossip-join", strings.Join(others, ","),
			"--cluster-label", filepath.Base(root), "--log-level", "info"}, extra...)
		c.start(p)
	}
	t.Cleanup(c.stopAll)
	c.waitLeader(20 * time.Second)
	return c
}

func (c *cluster) start(p *proc) {
	c.t.Helper()
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	log, err := os.OpenFile(filepath.Join(p.dir, "kvd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "kvd"), p.args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		c.t.Fatal(err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(p.exited)
	}()
}

func (c *cluster) running(p *proc) bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(p *proc) {
	c.t.Helper()
	if !c.running(p) {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func (c *cluster) stopAll() {
	for _, p := range c.procs {
		if c.running(p) {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range c.procs {
		if p.cmd == nil {
			continue
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if c.t.Failed() {
		for _, p := range c.procs {
			if b, err := os.ReadFile(filepath.Join(p.dir, "kvd.log")); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				c.t.Logf("--- last lines of %s's log ---\n%s", p.id, strings.Join(lines[max(0, len(lines)-15):], "\n"))
			}
		}
	}
}

func (c *cluster) endpoints() []string {
	var eps []string
	for _, p := range c.procs {
		eps = append(eps, p.http)
	}
	return eps
}

func (c *cluster) client(endpoints ...string) *client.Client {
	c.t.Helper()
	if len(endpoints) == 0 {
		endpoints = c.endpoints()
	}
	cfg := client.DefaultConfig()
	cfg.Endpoints = endpoints
	cfg.DialTimeout = 500 * time.Millisecond
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func (c *cluster) byID(id string) *proc {
	for _, p := range c.procs {
		if p.id == id {
			return p
		}
	}
	c.t.Fatalf("no node %q", id)
	return nil
}

// waitLeader polls until every running node reports the same leader, which is running, and
// has caught up with its own registration (a node takes no eventual writes before), and returns
// the leader.
func (c *cluster) waitLeader(timeout time.Duration) *proc {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		leader := ""
		agreed := true
		for _, p := range c.procs {
			if !c.running(p) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.client(p.http).StatusOf(ctx, p.http)
			cancel()
			if err != nil || st.Leader == "" || leader != "" && st.Leader != leader || joining(st, p.id) {
				agreed = false
				break
			}
			leader = st.Leader
		}
		if agreed && leader != "" && c.running(c.byID(leader)) {
			return c.byID(leader)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no agreed leader among running nodes within %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// joining reports whether node id says, in its status st, that it is still joining.
func joining(st *client.StatusResponse, id string) bool {
	for _, m := range st.Nodes {
		if m.ID == id {
			return m.Joining
		}
	}
	return false
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
