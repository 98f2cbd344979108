package systemtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

// The container tier: the dialkv image (scripts/image.sh) run as a 3-node cluster on a private
// Docker network. Each run names its network, containers and volumes dkvst-<random>, so runs
// never collide with each other or with deploy/compose.yaml, and removes them in t.Cleanup.

// dockerImage is the image under test ($DIALKV_TEST_IMAGE, default dialkv:dev).
func dockerImage() string {
	if img := os.Getenv("DIALKV_TEST_IMAGE"); img != "" {
		return img
	}
	return "dialkv:dev"
}

// docker runs one docker command, bounded by timeout, and returns its trimmed output.
func docker(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// needDocker skips unless a Docker engine answers, and builds the image when it is missing.
func needDocker(t *testing.T) string {
	t.Helper()
	needBinaries(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("container test: no docker command")
	}
	if _, err := docker(10*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("container test: no Docker engine answers: %v", err)
	}
	img := dockerImage()
	if _, err := docker(10*time.Second, "image", "inspect", img); err != nil {
		script, _ := filepath.Abs("../scripts/image.sh")
		t.Logf("image %s missing; building it with %s (at most 5 minutes)", img, script)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, script, img).CombinedOutput()
		if err != nil {
			t.Skipf("container test: image %s missing and building it failed: %v\n%s", img, err, out)
		}
	}
	return img
}

// dockerNode is one container of a dockerCluster.
type dockerNode struct {
	id, container, http string // http: the published API address on 127.0.0.1
}

type dockerCluster struct {
	t       *testing.T
	run     string
	network string
	nodes   []*dockerNode
}

// startDockerCluster starts n containers of img on a fresh network and waits for a leader.
func startDockerCluster(t *testing.T, img string, n int) *dockerCluster {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	run := "dkvst-" + hex.EncodeToString(b[:])
	c := &dockerCluster{t: t, run: run, network: run}
	t.Cleanup(c.remove)
	if _, err := docker(30*time.Second, "network", "create", "--label", "dialkv.systemtest="+run, c.network); err != nil {
		t.Fatal(err)
	}
	var boot, gossip []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		c.nodes = append(c.nodes, &dockerNode{id: id, container: run + "-" + id, http: freePort(t)})
		boot = append(boot, id+"="+id+":7101")
		gossip = append(gossip, id+":7201")
	}
	for _, nd := range c.nodes {
		args := []string{"run", "-d", "--name", nd.container, "--hostname", nd.id,
			"--network", c.network, "--network-alias", nd.id, "--label", "dialkv.systemtest=" + run,
			"-p", nd.http + ":7001", "-v", nd.container + ":/data",
			"-e", "KV_ID=" + nd.id, "-e", "KV_HTTP=" + nd.id + ":7001", "-e", "KV_RAFT=" + nd.id + ":7101",
			"-e", "KV_GOSSIP_ADVERTISE=" + nd.id + ":7201", "-e", "KV_GOSSIP_JOIN=" + strings.Join(gossip, ","),
			"-e", "KV_BOOTSTRAP=" + strings.Join(boot, ","), "-e", "KV_CLUSTER_LABEL=" + run,
			"-e", "KV_GOSSIP_PROFILE=local", "-e", "KV_LOG_FORMAT=text",
			img}
		if _, err := docker(60*time.Second, args...); err != nil {
			t.Fatal(err)
		}
	}
	c.waitHealthy(60 * time.Second)
	return c
}

// remove deletes the containers (logging the tail of each one's log when the test failed),
// their volumes and the network.
func (c *dockerCluster) remove() {
	for _, nd := range c.nodes {
		if c.t.Failed() {
			out, _ := docker(20*time.Second, "logs", "--tail", "30", nd.container)
			c.t.Logf("%s log tail:\n%s", nd.id, out)
		}
		_, _ = docker(60*time.Second, "rm", "-f", "-v", nd.container)
		_, _ = docker(30*time.Second, "volume", "rm", "-f", nd.container)
	}
	_, _ = docker(30*time.Second, "network", "rm", c.network)
}

func (c *dockerCluster) endpoints() []string {
	var eps []string
	for _, nd := range c.nodes {
		eps = append(eps, nd.http)
	}
	return eps
}

func (c *dockerCluster) client(timeout time.Duration) *client.Client {
	cfg := client.DefaultConfig()
	cfg.Endpoints = c.endpoints()
	cfg.Timeout = timeout
	cl, err := client.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// waitHealthy waits until every node answers ready and they agree on one leader.
func (c *dockerCluster) waitHealthy(limit time.Duration) {
	c.t.Helper()
	cl := c.client(2 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		last = c.state(cl, hc)
		if last == "" {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("cluster not healthy after %v: %s", limit, last)
}

// state is "" when every node is ready and all name the same leader, else what is missing.
func (c *dockerCluster) state(cl *client.Client, hc *http.Client) string {
	leaders := map[string]bool{}
	for _, nd := range c.nodes {
		resp, err := hc.Get("http://" + nd.http + "/v1/health/ready")
		if err != nil {
			return nd.id + " not answering"
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("%s not ready (%d)", nd.id, resp.StatusCode)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cl.StatusOf(ctx, nd.http)
		cancel()
		if err != nil || st.Leader == "" {
			return nd.id + " has no leader"
		}
		leaders[st.Leader] = true
	}
	if len(leaders) != 1 {
		return fmt.Sprintf("nodes disagree on the leader: %v", leaders)
	}
	return ""
}

// writer puts fresh keys at one level until stop, at most max of them, and records which were
// acknowledged and the longest time between two acknowledgements.
type writer struct {
	level   string
	mu      sync.Mutex
	acked   []string
	failed  int
	longest time.Duration
}

func (w *writer) run(ctx context.Context, cl *client.Client, limit int, stop <-chan struct{}) {
	last := time.Now()
	for i := range limit {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		key := fmt.Sprintf("%s-%05d", w.level, i)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cl.Put(wctx, key, []byte(key), client.PutOptions{Consistency: w.level})
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err != nil {
			w.failed++
		} else {
			w.acked = append(w.acked, key)
			w.longest = max(w.longest, now.Sub(last))
			last = now
		}
		w.mu.Unlock()
	}
}

// TestDockerRollingRestart restarts every container of a 3-node cluster one by one under
// steady strong and eventual writes: no acknowledged write may be lost, and strong writes may
// be unavailable only for a few election timeouts at a time.
func TestDockerRollingRestart(t *testing.T) {
	img := needDocker(t)
	c := startDockerCluster(t, img, 3)
	t.Logf("cluster %s up: %v", c.run, c.endpoints())

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	strong, eventual := &writer{level: "strong"}, &writer{level: "eventual"}
	var wg sync.WaitGroup
	for _, w := range []*writer{strong, eventual} {
		cl := c.client(3 * time.Second)
		wg.Go(func() { w.run(ctx, cl, 20000, stop) })
	}

	time.Sleep(2 * time.Second) // a baseline before the first restart
	for _, nd := range c.nodes {
		start := time.Now()
		if _, err := docker(60*time.Second, "restart", "-t", "10", nd.container); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		c.waitHealthy(60 * time.Second)
		t.Logf("restarted %s: healthy again after %v", nd.id, time.Since(start).Round(time.Millisecond))
		time.Sleep(2 * time.Second)
	}
	close(stop)
	wg.Wait()

	strong.mu.Lock()
	eventual.mu.Lock()
	defer strong.mu.Unlock()
	defer eventual.mu.Unlock()
	t.Logf("strong writes: %d acknowledged, %d failed; longest gap between acknowledgements %v",
		len(strong.acked), strong.failed, strong.longest.Round(time.Millisecond))
	t.Logf("eventual writes: %d acknowledged, %d failed; longest gap %v",
		len(eventual.acked), eventual.failed, eventual.longest.Round(time.Millisecond))
	if len(strong.acked) == 0 || len(eventual.acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	if strong.longest > 15*time.Second {
		t.Errorf("strong writes were unavailable for %v during the rolling restart; want < 15s", strong.longest)
	}

	// Every acknowledged write must be committed: strong reads until each is there (eventual
	// ones are committed by the committer within moments), bounded.
	cl := c.client(3 * time.Second)
	missing := append(append([]string(nil), strong.acked...), eventual.acked...)
	deadline := time.Now().Add(60 * time.Second)
	for len(missing) > 0 && time.Now().Before(deadline) {
		var still []string
		for _, key := range missing {
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			v, _, err := cl.Get(rctx, key, client.GetOptions{Consistency: "strong"})
			rcancel()
			if err != nil || string(v) != key {
				still = append(still, key)
			}
		}
		missing = still
		if len(missing) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged writes missing from strong reads after 60s, e.g. %q", len(missing), missing[:min(5, len(missing))])
	}
}
