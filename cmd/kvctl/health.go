package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// healthCommand is `kvctl health`: the readiness probe of one or more nodes, made for container
// health checks (the dialkv image's HEALTHCHECK runs it). It asks GET /v1/health/ready of every
// endpoint and succeeds only when each one answers 200; otherwise it fails with each unready
// node's reason. It never follows a leader or fails over: a health check is about the node asked.
func healthCommand() command {
	return command{name: "health", args: "[--endpoints ADDRS]", maxArgs: 0, flags: []string{"endpoints", "timeout"}, run: runHealth,
		summary: "exit 0 when every endpoint is ready (GET /v1/health/ready), else 1 with the reason; inside a kvd container the default endpoint is the node's own, $KV_HTTP"}
}

func runHealth(ctx context.Context, inv *invocation) error {
	endpoints := splitEndpoints(inv.opts.endpoints)
	if len(endpoints) == 0 {
		return usageErrorf("%s is empty", inv.opts.endpointsSource())
	}
	if inv.opts.timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	hc := &http.Client{Timeout: inv.opts.timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	var problems []string
	for _, ep := range endpoints {
		node, err := probeReady(ctx, hc, ep)
		if err != nil {
			problems = append(problems, ep+": "+err.Error())
			continue
		}
		fmt.Fprintf(inv.stdout, "%s\tready\t%s\n", ep, node)
	}
	if len(problems) > 0 {
		return errors.New("not ready: " + strings.Join(problems, "; "))
	}
	return nil
}

// probeReady asks one node whether it is ready. It returns the node id on 200, else an error
// with the node's own reason (503 {"status","reason"}) or the transport failure.
func probeReady(ctx context.Context, hc *http.Client, endpoint string) (string, error) {
	base := endpoint
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	rctx, cancel := context.WithTimeout(ctx, hc.Timeout+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/health/ready", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("not answering: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var answer struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
		Node   string `json:"node"`
	}
	_ = json.Unmarshal(body, &answer) // a non-JSON answer is reported by its status below
	if resp.StatusCode == http.StatusOK {
		return answer.Node, nil
	}
	switch {
	case answer.Reason != "":
		return "", fmt.Errorf("%s: %s", answer.Status, answer.Reason)
	case answer.Status != "":
		return "", fmt.Errorf("%s (HTTP %d)", answer.Status, resp.StatusCode)
	}
	return "", fmt.Errorf("HTTP %d", resp.StatusCode)
}
