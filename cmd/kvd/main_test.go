package main

import (
	"errors"
	"flag"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/node"
)

// TestUsageErrors: a mistake in the command line is one line naming it, exit 2. Without --id kvd
// says that alone, not also what the missing id makes of the data directory or gossip.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "--id is required (or KV_ID): the node's stable name, such as n1 (usage: kvd --id ID [flags]; kvd -h lists the flags)"},
		{"unknown flag", []string{"--id", "n1", "--bogus"}, "flag provided but not defined: -bogus (kvd -h lists the flags)"},
		{"bad flag value", []string{"--id", "n1", "--leader-wait", "soon"}, `invalid value "soon" for flag -leader-wait: parse error (kvd -h lists the flags)`},
		{"argument", []string{"--id", "n1", "extra"}, `unexpected argument "extra" (see kvd -h)`},
		// A value the node's config refuses is named once, though raft's and gossip's configs,
		// built from the same flags, would refuse it too.
		{"bad id", []string{"--id", "a b"}, `node id "a b" must not contain spaces or any of ,=/@`},
		{"id too long", []string{"--id", strings.Repeat("n", 32761)}, "node id of 32761 bytes is too long: at most 32760"},
		{"bad address", []string{"--id", "n1", "--http", "nonsense"}, `http address "nonsense": address nonsense: missing port in address`},
		// Values kvd checks itself are usage errors too, not failures of a node that ran.
		{"bad log level", []string{"--id", "n1", "--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{"bad log format", []string{"--id", "n1", "--log-format", "xml"}, `--log-format "xml": want text or json`},
		{"bad bootstrap", []string{"--id", "n1", "--bootstrap", "n1"}, `--bootstrap: peer "n1": want ID=HOST:PORT`},
		{"gc percent out of range", []string{"--id", "n1", "--gc-percent", "5"}, "--gc-percent 5 must be between 10 and 100000"},
		{"negative read cache", []string{"--id", "n1", "--read-cache-mb", "-1"}, "--read-cache-mb -1 must be between 0 (off) and 1048576"},
		{"bad gossip advertise", []string{"--id", "n1", "--gossip-advertise", "nonsense"}, "--gossip-advertise: address nonsense: missing port in address"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr strings.Builder
			_, _, err := parseConfig(c.args, &stderr)
			if err == nil || err.Error() != c.want || exitCode(err) != 2 || stderr.Len() != 0 {
				t.Errorf("err %v (exit %d), stderr %q; want %q, exit 2, nothing else on stderr", err, exitCode(err), stderr.String(), c.want)
			}
		})
	}
	var stderr strings.Builder
	if _, _, err := parseConfig([]string{"-h"}, &stderr); exitCode(err) != 0 || !strings.HasPrefix(stderr.String(), "usage: kvd --id ID [flags]") ||
		!strings.Contains(stderr.String(), "data directory (default ./data/ID)") {
		t.Errorf("-h: err %v, stderr %q; want the help and exit 0", err, stderr.String())
	}
	if code := exitCode(errors.New("listen tcp: address already in use")); code != 1 {
		t.Errorf("a failure that is no usage error: exit %d, want 1", code)
	}
	// The data directory defaults to ./data/ID, as the help says.
	if cfg, _, err := parseConfig([]string{"--id", "n7"}, io.Discard); err != nil || cfg.DataDir != filepath.Join("data", "n7") {
		t.Errorf("--id n7 alone: data dir %q, err %v", cfg.DataDir, err)
	}
}

func TestContainerFlags(t *testing.T) {
	base := []string{"--data-dir", t.TempDir(), "--http", "127.0.0.1:7001", "--raft", "127.0.0.1:7101", "--gossip", "0.0.0.0:7201"}
	statefulSet := []string{"--bootstrap", "k-0=127.0.0.1:7101", "--join", "127.0.0.1:7001", "--join-unless-bootstrap"}
	tests := []struct {
		name      string
		args      []string
		advertise string
		bootstrap int
		join      string
	}{
		{"advertise host name resolved to an IP", []string{"--id", "n1", "--gossip-advertise", "localhost:7201"}, "127.0.0.1:7201", 0, ""},
		{"advertise IP kept", []string{"--id", "n1", "--gossip-advertise", "10.1.2.3:7201"}, "10.1.2.3:7201", 0, ""},
		{"statefulset: the listed pod bootstraps", append([]string{"--id", "k-0"}, statefulSet...), "", 1, ""},
		{"statefulset: another pod joins", append([]string{"--id", "k-1"}, statefulSet...), "", 0, "127.0.0.1:7001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := parseConfig(append(append([]string(nil), base...), tc.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Gossip.AdvertiseAddr != tc.advertise || len(cfg.Raft.Bootstrap) != tc.bootstrap || cfg.Join != tc.join {
				t.Errorf("advertise %q bootstrap %v join %q; want %q, %d peers, %q", cfg.Gossip.AdvertiseAddr, cfg.Raft.Bootstrap, cfg.Join, tc.advertise, tc.bootstrap, tc.join)
			}
		})
	}
	if _, _, err := parseConfig(append(append([]string(nil), base...), "--id", "n1", "--bootstrap", "n1=127.0.0.1:7101", "--join", "127.0.0.1:7002"), io.Discard); err == nil {
		t.Error("--bootstrap with --join and without --join-unless-bootstrap must still be refused")
	}
}

// TestGossipAdvertiseLookup: a --gossip-advertise name that does not exist is a mistake in the
// flag (exit 2); a lookup that failed for now (no DNS server answered) is not, and may work when
// the node is restarted (exit 1).
func TestGossipAdvertiseLookup(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"no such host", &net.DNSError{Err: "no such host", Name: "kdv-0", IsNotFound: true}, 2},
		{"lookup timed out", &net.DNSError{Err: "i/o timeout", Name: "kvd-0", IsTimeout: true}, 1},
		{"server failure", &net.DNSError{Err: "server misbehaving", Name: "kvd-0", IsTemporary: true}, 1},
		{"no address", errors.New("kvd-0 has no address"), 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := advertiseError(c.err)
			if got := exitCode(err); got != c.want || !strings.HasPrefix(err.Error(), "--gossip-advertise: ") {
				t.Errorf("%v: exit %d, want %d", err, got, c.want)
			}
		})
	}
}

// The memory flags take MiB: --read-cache-mb sizes the read cache (0 turns it off),
// --max-inflight-mb the write budget (0 sets none; one that cannot hold a value of
// --max-value-size would refuse such a value forever, and is a usage error).
func TestMemoryFlags(t *testing.T) {
	base := []string{"--id", "n1", "--data-dir", t.TempDir()}
	cache := func(c node.Config) int64 { return int64(c.ReadCacheBytes) }
	inflight := func(c node.Config) int64 { return c.MaxInflightBytes }
	for _, c := range []struct {
		args  []string
		got   func(node.Config) int64
		bytes int64
		ok    bool
	}{
		{nil, cache, 32 << 20, true},
		{[]string{"--read-cache-mb", "64"}, cache, 64 << 20, true},
		{[]string{"--read-cache-mb", "0"}, cache, 0, true},
		{[]string{"--read-cache-mb", "-1"}, cache, 0, false},
		{nil, inflight, 256 << 20, true},
		{[]string{"--max-inflight-mb", "64"}, inflight, 64 << 20, true},
		{[]string{"--max-inflight-mb", "0"}, inflight, 0, true},
		{[]string{"--max-inflight-mb", "-1"}, inflight, 0, false},
		{[]string{"--max-inflight-mb", "8", "--max-value-size", "16777216"}, inflight, 0, false},
	} {
		cfg, _, err := parseConfig(append(append([]string(nil), base...), c.args...), io.Discard)
		if (err == nil) != c.ok || c.ok && c.got(cfg) != c.bytes || !c.ok && exitCode(err) != 2 {
			t.Errorf("%v: %d bytes, err %v; want %d bytes, ok=%v", c.args, c.got(cfg), err, c.bytes, c.ok)
		}
	}
}

func TestGCPercent(t *testing.T) {
	base := []string{"--id", "n1", "--data-dir", t.TempDir()}
	noEnv := func(string) (string, bool) { return "", false }
	gogc := func(name string) (string, bool) { return "50", name == "GOGC" }
	for _, c := range []struct {
		name string
		args []string
		env  func(string) (string, bool)
		want int
		ok   bool
	}{
		{"default", nil, noEnv, defaultGCPercent, true},
		{"flag", []string{"--gc-percent", "200"}, noEnv, 200, true},
		{"GOGC set: the runtime's stays", nil, gogc, 0, true},
		{"flag wins over GOGC", []string{"--gc-percent", "150"}, gogc, 150, true},
		{"too small", []string{"--gc-percent", "5"}, noEnv, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("kvd", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			v := fs.Int("gc-percent", defaultGCPercent, "")
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			got, err := chooseGCPercent(fs, *v, c.env)
			if (err == nil) != c.ok || got != c.want {
				t.Errorf("got %d, err %v; want %d, ok=%v", got, err, c.want, c.ok)
			}
		})
	}
	// The flag reaches the process settings through parseConfig, KV_GC_PERCENT included.
	t.Setenv("KV_GC_PERCENT", "250")
	if _, proc, err := parseConfig(base, io.Discard); err != nil || proc.gcPercent != 250 {
		t.Errorf("KV_GC_PERCENT=250: gc percent %d, err %v", proc.gcPercent, err)
	}
}
