package systemtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

// composeCommand is how this machine runs Compose: the docker plugin (v2) or docker-compose
// (v1), or nil when neither answers.
func composeCommand() []string {
	for _, cmd := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := exec.CommandContext(ctx, cmd[0], append(cmd[1:], "version")...).Run()
		cancel()
		if err == nil {
			return cmd
		}
	}
	return nil
}

// compose runs one Compose command on deploy/compose.yaml as project, with env added to the
// environment, bounded by timeout.
func compose(cmd []string, project string, env []string, timeout time.Duration, args ...string) (string, error) {
	file, err := filepath.Abs("../deploy/compose.yaml")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append(append(append([]string(nil), cmd[1:]...), "-p", project, "-f", file), args...)
	c := exec.CommandContext(ctx, cmd[0], full...)
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", strings.Join(cmd, " "), strings.Join(full, " "), err, out)
	}
	return string(out), nil
}

// TestDockerComposeOtherPortsAndRejoin follows docs/deploy.md's Docker Compose section: the
// compose file's cluster comes up on host ports other than make cluster's (DIALKV_N*_PORT), so
// it can run beside one, and a member removed and wiped joins again under its id through
// DIALKV_BOOTSTRAP= DIALKV_JOIN=n1:7001. Before, the ports were fixed at 7001-7003, and a node of
// the compose file started on an empty volume always bootstrapped: alone, never healthy.
func TestDockerComposeOtherPortsAndRejoin(t *testing.T) {
	img := needDocker(t)
	cmd := composeCommand()
	if cmd == nil {
		t.Skip("container test: neither docker compose nor docker-compose answers")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	project := "dkvst-" + hex.EncodeToString(b[:])
	c := &dockerCluster{t: t, run: project}
	env := []string{"DIALKV_IMAGE=" + img}
	for i := 1; i <= 3; i++ {
		nd := &dockerNode{id: fmt.Sprintf("n%d", i), container: fmt.Sprintf("%s_n%d_1", project, i), http: freePort(t)}
		c.nodes = append(c.nodes, nd)
		_, port, _ := strings.Cut(nd.http, ":")
		env = append(env, fmt.Sprintf("DIALKV_N%d_PORT=%s", i, port))
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := compose(cmd, project, env, 30*time.Second, "logs", "--tail", "30")
			t.Logf("logs:\n%s", out)
		}
		if out, err := compose(cmd, project, env, 2*time.Minute, "down", "-v", "-t", "5"); err != nil {
			t.Logf("down: %v\n%s", err, out)
		}
	})
	if _, err := compose(cmd, project, env, 2*time.Minute, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	c.waitHealthy(60 * time.Second)
	cl := c.client(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cl.Put(ctx, "before", []byte("v"), client.PutOptions{Consistency: "strong"}); err != nil {
		t.Fatal(err)
	}

	// Remove n3 and lose its container and volume, then add it again as the docs say.
	if _, err := compose(cmd, project, env, time.Minute, "rm", "-s", "-f", "n3"); err != nil {
		t.Fatal(err)
	}
	if _, err := docker(30*time.Second, "volume", "rm", project+"_n3-data"); err != nil {
		t.Fatal(err)
	}
	rest := clientOf(t, c.nodes[0].http, c.nodes[1].http)
	deadline := time.Now().Add(40 * time.Second)
	for {
		err := rest.RemoveMember(ctx, "n3")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("removing n3: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	rejoin := append(append([]string(nil), env...), "DIALKV_BOOTSTRAP=", "DIALKV_JOIN=n1:7001")
	if _, err := compose(cmd, project, rejoin, time.Minute, "up", "-d", "n3"); err != nil {
		t.Fatal(err)
	}
	c.waitHealthy(60 * time.Second)
	n3 := clientOf(t, c.nodes[2].http)
	v, meta, err := n3.Get(ctx, "before", client.GetOptions{Consistency: "strong"})
	if err != nil || string(v) != "v" || meta.Node != "n3" {
		t.Fatalf("strong read of a key written before, on the rejoined n3: %q %+v %v", v, meta, err)
	}
	st, err := n3.StatusOf(ctx, c.nodes[2].http)
	if err != nil || len(st.Nodes) != 3 {
		t.Fatalf("status on the rejoined n3: %+v %v", st, err)
	}
}

// clientOf is a client of the given endpoints only.
func clientOf(t *testing.T, endpoints ...string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Endpoints = endpoints
	cfg.Timeout = 5 * time.Second
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
