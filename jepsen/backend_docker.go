package jepsen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dialkv/dialkv/internal/freeport"
)

// DefaultDockerImage is the image the docker backend runs unless $KVJEPSEN_IMAGE names another
// (build it with scripts/image.sh, make image).
const DefaultDockerImage = "dialkv:dev"

// Docker runs each node as a container of the dialkv image on a private Docker network
// dkvj-<run>; only the HTTP APIs are published, on 127.0.0.1 with free ports. Kill is docker
// kill (SIGKILL), pause is docker pause (the cgroup freezer), restart starts the same container
// on its named volume. Network faults, clocks and slowness go through the fault hook, exactly as
// on the local backend: every kvd runs with --test-faults.
//
// Each container's output reaches the node's log file through an attached `docker start -a`,
// whose process the shared cluster machinery tracks as the node's: it lives exactly as long as
// the container runs. Everything is labelled dialkv.jepsen=<run>; after a kill -9 of the harness,
// `docker rm -f $(docker ps -aq --filter label=dialkv.jepsen)` removes what is left.
type Docker struct {
	*cluster
	image   string
	run     string
	network string

	closeOnce sync.Once
	closeErr  error
	// created: the network exists, so Close has containers and volumes to look for.
	created bool
}

// NewDocker returns a docker backend; nothing runs until Start. Unlike the process backends it
// needs no kvd binary on the host, only the image.
func NewDocker(cfg ClusterConfig) (*Docker, error) {
	switch {
	case cfg.Nodes < 1 || cfg.Nodes > 9:
		return nil, fmt.Errorf("nodes %d: want 1 to 9", cfg.Nodes)
	case cfg.DataDir == "" || cfg.LogDir == "":
		return nil, errors.New("data and log directories are required")
	}
	image := os.Getenv("KVJEPSEN_IMAGE")
	if image == "" {
		image = DefaultDockerImage
	}
	run := "dkvj-" + randomID()
	var addrs []nodeAddrs
	for i := 1; i <= cfg.Nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		http, err := freeport.Loopback()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, nodeAddrs{id: id, http: http, raft: id + ":7101", gossip: id + ":7201"})
	}
	d := &Docker{cluster: newCluster("docker", cfg, addrs, run), image: image, run: run, network: run}
	return d, nil
}

// DockerAvailable returns nil when a Docker engine answers and the image is there.
func DockerAvailable(ctx context.Context, image string) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return errors.New("no docker command")
	}
	if _, err := dockerCmd(ctx, 10*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("no Docker engine answers: %w", err)
	}
	if _, err := dockerCmd(ctx, 10*time.Second, "image", "inspect", "--format", "{{.Id}}", image); err != nil {
		return fmt.Errorf("image %s not found (build it with make image or scripts/image.sh)", image)
	}
	return nil
}

// dockerCmd runs one docker command bounded by timeout; the error carries docker's output.
func dockerCmd(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	text := strings.TrimSpace(string(out))
	if err != nil {
		return text, fmt.Errorf("docker %s: %w: %s", args[0], err, text)
	}
	return text, nil
}

func (d *Docker) container(id string) string { return d.run + "-" + id }

// createArgs is `docker create` for node a: bootstrapping with the others, or, with join (a
// member's address on the network), joining through it.
func (d *Docker) createArgs(a nodeAddrs, join string) []string {
	boot, gossip := peerArgs(d.addrs, a.id)
	start := []string{"--bootstrap", boot}
	if join != "" {
		start = []string{"--join", join}
	}
	args := []string{"create", "--name", d.container(a.id), "--hostname", a.id,
		"--network", d.network, "--network-alias", a.id, "--label", "dialkv.jepsen=" + d.run,
		"-p", a.http + ":7001", "-v", d.container(a.id) + ":/data",
		d.image,
		"--id", a.id, "--http", a.id + ":7001", "--raft", a.raft,
		"--gossip", "0.0.0.0:7201", "--gossip-advertise", a.gossip,
		"--gossip-join", gossip, "--gossip-profile", "local"}
	args = append(args, start...)
	args = append(args, "--data-dir", "/data",
		"--cluster-label", d.label, "--log-level", d.cfg.LogLevel, "--log-format", "text", "--test-faults")
	if d.cfg.LeaderWait > 0 {
		args = append(args, "--leader-wait", d.cfg.LeaderWait.String())
	}
	return append(args, d.cfg.Extra...)
}

// Start creates the network and the containers, starts them and waits for a leader.
func (d *Docker) Start(ctx context.Context) error {
	if err := DockerAvailable(ctx, d.image); err != nil {
		return err
	}
	for _, dir := range []string{d.cfg.DataDir, d.cfg.LogDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	help, _ := dockerCmd(ctx, 30*time.Second, "run", "--rm", "--network", "none", d.image, "-h")
	d.hasHookFlag = strings.Contains(help, "-test-faults")
	if !d.hasHookFlag {
		return fmt.Errorf("kvd in image %s has no --test-faults flag", d.image)
	}
	if _, err := dockerCmd(ctx, 30*time.Second, "network", "create", "--label", "dialkv.jepsen="+d.run, d.network); err != nil {
		return err
	}
	d.mu.Lock()
	d.created = true
	d.mu.Unlock()
	d.logf("docker network %s, image %s", d.network, d.image)
	for _, a := range d.addrs {
		if _, err := dockerCmd(ctx, 60*time.Second, d.createArgs(a, "")...); err != nil {
			return err
		}
		p := &proc{id: a.id, argv: []string{"docker", "start", "-a", d.container(a.id)},
			logPath: filepath.Join(d.cfg.LogDir, a.id+".log")}
		d.procs[a.id] = p
		if err := p.start(); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	leader, err := d.waitReady(wctx)
	if err != nil {
		return err
	}
	d.logf("docker cluster of %d containers up, leader %s", len(d.addrs), leader)
	d.probeHook(ctx)
	return nil
}

// Kill is docker kill (SIGKILL to kvd); it waits until the container has stopped.
func (d *Docker) Kill(ctx context.Context, id string) error {
	p, err := d.proc(id)
	if err != nil {
		return err
	}
	if !p.running() {
		return nil
	}
	if _, err := dockerCmd(ctx, 20*time.Second, "kill", d.container(id)); err != nil {
		// A paused container may refuse SIGKILL on older engines: thaw it and try again.
		if _, uerr := dockerCmd(ctx, 20*time.Second, "unpause", d.container(id)); uerr == nil {
			_, err = dockerCmd(ctx, 20*time.Second, "kill", d.container(id))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if !p.waitExited(wctx) {
		return fmt.Errorf("%s: container still attached 20s after docker kill", id)
	}
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	return nil
}

// Pause freezes the container (docker pause).
func (d *Docker) Pause(ctx context.Context, id string) error {
	p, err := d.proc(id)
	if err != nil {
		return err
	}
	if !p.running() {
		return fmt.Errorf("%s: %w", id, errNotRunning)
	}
	if _, err := dockerCmd(ctx, 20*time.Second, "pause", d.container(id)); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	return nil
}

// Resume thaws the container and pushes faults that changed meanwhile.
func (d *Docker) Resume(ctx context.Context, id string) error {
	p, err := d.proc(id)
	if err != nil {
		return err
	}
	if p.isPaused() {
		if _, err := dockerCmd(ctx, 20*time.Second, "unpause", d.container(id)); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	return d.pushDirty(ctx)
}

// Close removes the containers, their volumes (unless Keep) and the network. Safe to call more
// than once and after a failed Start.
func (d *Docker) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.remove() })
	return d.closeErr
}

func (d *Docker) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d.mu.Lock()
	d.closed = true
	created := d.created
	d.mu.Unlock()
	if !created {
		if d.cfg.Keep {
			return nil
		}
		return os.RemoveAll(d.cfg.DataDir)
	}
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, a := range d.addrs {
		wg.Go(func() {
			name := d.container(a.id)
			// A graceful stop first so the log ends with kvd's shutdown; rm -f after it.
			_, _ = dockerCmd(ctx, 20*time.Second, "stop", "-t", "5", name)
			out, err := dockerCmd(ctx, 30*time.Second, "rm", "-f", name)
			if err != nil && !bytes.Contains([]byte(out), []byte("No such container")) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			if !d.cfg.Keep {
				_, _ = dockerCmd(ctx, 30*time.Second, "volume", "rm", "-f", name)
			}
		})
	}
	wg.Wait()
	for _, p := range d.procs {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if !p.waitExited(wctx) {
			_ = p.kill(5 * time.Second) // the attached docker CLI, not kvd
		}
		wcancel()
	}
	if out, err := dockerCmd(ctx, 30*time.Second, "network", "rm", d.network); err != nil && !strings.Contains(out, "not found") {
		errs = append(errs, err)
	}
	if !d.cfg.Keep {
		errs = append(errs, os.RemoveAll(d.cfg.DataDir))
	} else {
		d.logf("kept the data volumes %s-nI", d.run)
	}
	return errors.Join(errs...)
}
