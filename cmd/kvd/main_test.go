package main

import (
	"flag"
	"io"
	"testing"
)

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

func TestReadCacheFlag(t *testing.T) {
	base := []string{"--id", "n1", "--data-dir", t.TempDir()}
	for _, c := range []struct {
		args  []string
		bytes int
		ok    bool
	}{
		{nil, 32 << 20, true},
		{[]string{"--read-cache-mb", "64"}, 64 << 20, true},
		{[]string{"--read-cache-mb", "0"}, 0, true},
		{[]string{"--read-cache-mb", "-1"}, 0, false},
	} {
		cfg, _, err := parseConfig(append(append([]string(nil), base...), c.args...), io.Discard)
		if (err == nil) != c.ok || c.ok && cfg.ReadCacheBytes != c.bytes {
			t.Errorf("%v: %d bytes, err %v; want %d bytes, ok=%v", c.args, cfg.ReadCacheBytes, err, c.bytes, c.ok)
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
