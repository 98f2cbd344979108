package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, clean, err := parseFlags([]string{"--backend", "local", "--workload", "register, set", "--nemesis", "partition+clock,kill",
		"--nodes", "3", "--time", "20s", "--clients", "6", "--rate", "100", "--unsafe", "strong-reads", "--bin", "/opt/kv", "--seed", "7"}, &stderr)
	if err != nil || clean {
		t.Fatalf("parse: %v (clean %v)", err, clean)
	}
	if cfg.Backend != "local" || strings.Join(cfg.Workloads, ",") != "register,set" || cfg.Nemesis != "partition+clock,kill" ||
		cfg.Nodes != 3 || cfg.Time != 20*time.Second || cfg.Clients != 6 || cfg.Rate != 100 || cfg.Unsafe != "strong-reads" ||
		cfg.Bin != "/opt/kv" || cfg.Seed != 7 {
		t.Errorf("config %+v", cfg)
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--workload", "bank"},
		{"--nemesis", "meteor"},
		{"--backend", "kubernetes"},
		{"--unsafe", "all"},
		{"extra"},
	} {
		if _, _, err := parseFlags(append([]string{"--backend", "local"}, args...), &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestHelpAndExitCodes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("-h exits %d", code)
	}
	for _, want := range []string{"usage: kvjepsen", "--backend", "register", "partition", "netns"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	stderr.Reset()
	if code := run([]string{"--workload", "bank"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "bank") {
		t.Errorf("bad workload: exit %d, %q", code, stderr.String())
	}
}
