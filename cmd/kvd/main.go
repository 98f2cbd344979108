// Command kvd runs one dialkv node.
//
//	kvd --id n1 --http 127.0.0.1:7001 --raft 127.0.0.1:7101 --data-dir data/n1 \
//	    --bootstrap n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103
//
// Every flag can also be set by an environment variable: KV_ plus the flag name in upper case
// with dashes as underscores (KV_DATA_DIR). A flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/dialkv/dialkv/internal/plant"
	"github.com/dialkv/dialkv/node"
	"github.com/dialkv/dialkv/replication/strong"
)

func main() {
	err := run(os.Args[1:], os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "kvd: %v\n", err)
	}
	os.Exit(exitCode(err))
}

// exitCode is the process's exit status for run's error: 0 for none (or -h), 2 for a mistake in
// the command line (as flag and kvctl use), 1 for anything else.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// usageError is a mistake in the command line (or the KV_* variables standing for it).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func run(args []string, stderr io.Writer) error {
	cfg, proc, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	logger := proc.logger
	if err := plant.Err(); err != nil {
		return usageErrorf("%v", err)
	}
	if on := plant.Active(); len(on) > 0 {
		logger.Warn("planted bugs switched on: this kvd is broken on purpose (internal/plant); never give it real data", "bugs", strings.Join(on, ","))
	} else if !plant.Built && os.Getenv(plant.EnvVar) != "" {
		logger.Warn(plant.EnvVar + " ignored: this kvd was built without -tags plantbugs, and has no planted bugs")
	}
	gc := "GOGC=" + os.Getenv("GOGC")
	if proc.gcPercent > 0 {
		debug.SetGCPercent(proc.gcPercent)
		gc = strconv.Itoa(proc.gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	logger.Info("kvd starting", "id", cfg.ID, "http", cfg.HTTPAddr, "raft", cfg.Raft.RaftAddr, "data_dir", cfg.DataDir, "gc_percent", gc)
	err = n.Run(ctx)
	if errors.Is(err, node.ErrRemoved) && !errors.Is(err, node.ErrWritesStranded) {
		// An operator's decision, not a failure: exit 0 so a supervisor does not restart it
		// (a restart would be refused anyway, with the same advice).
		logger.Warn("kvd stopped: this node was removed from the cluster; wipe its data directory and start it with --join to add it again", "id", cfg.ID)
		return nil
	}
	return err
}

// defaultGCPercent is kvd's garbage-collector target when neither --gc-percent nor GOGC says
// otherwise. A node's live heap is small (tens of MiB) while every request allocates, so with
// Go's default of 100 it collects many times a second under load. 200 bought about 16 % more
// strong puts per second for about 10 MiB more memory per node; 400 bought no more
// (docs/performance.md section 11).
const defaultGCPercent = 200

// process is what kvd sets up for the whole process rather than for the node.
type process struct {
	logger *slog.Logger
	// gcPercent is the GC target to set; 0 leaves the runtime's (GOGC from the environment).
	gcPercent int
}

// parseConfig turns flags (and KV_* variables) into a validated node configuration.
func parseConfig(args []string, stderr io.Writer) (node.Config, process, error) {
	var proc process
	cfg := node.DefaultConfig()
	fs := flag.NewFlagSet("kvd", flag.ContinueOnError)
	// The flag package would print the whole help after every parse error; kvd reports the error
	// in one line instead, and prints the help for -h only.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	id := fs.String("id", "", "node id: stable forever, not an address (required)")
	fs.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "HTTP API listen address")
	raftAddr := fs.String("raft", "127.0.0.1:7101", "Raft listen and advertise address")
	dataDir := fs.String("data-dir", "", "data directory (default ./data/ID)")
	bootstrap := fs.String("bootstrap", "", "initial voters of a NEW cluster, ID=HOST:PORT,... (same list on every node; ignored once the node has state)")
	joinOthers := fs.Bool("join-unless-bootstrap", false, "with both --bootstrap and --join: a node named in --bootstrap bootstraps, every other node joins (one configuration for every pod of a StatefulSet)")
	fs.StringVar(&cfg.Join, "join", "", "HTTP address of a running member to join through (for a node added to an existing cluster)")
	fs.StringVar(&cfg.Gossip.BindAddr, "gossip", "127.0.0.1:7201", "gossip (memberlist) listen address, UDP and TCP")
	gossipAdvertise := fs.String("gossip-advertise", "", "gossip address other members dial, HOST:PORT, when --gossip binds a wildcard (containers); a host name is resolved to its IP once, at start")
	gossipJoin := fs.String("gossip-join", "", "gossip addresses of other members to join, HOST:PORT,... (members recorded in the log are rejoined too)")
	fs.StringVar(&cfg.Gossip.Profile, "gossip-profile", "lan", "gossip timing profile: lan (production) or local (fast failure detection, for tests and one-host clusters)")
	fs.StringVar(&cfg.Gossip.Label, "cluster-label", "dialkv", "gossip label: clusters with different labels on one network never mix")
	fs.DurationVar(&cfg.DeadCommitDelay, "dead-commit-delay", cfg.DeadCommitDelay, "how long a peer must be dead in gossip before others commit its pending eventual writes")
	fs.Int64Var(&cfg.MaxValueSize, "max-value-size", cfg.MaxValueSize, "largest value accepted, in bytes")
	inflightMB := fs.Int64("max-inflight-mb", cfg.MaxInflightBytes>>20, "memory write requests may hold at once, their values included (MiB): a write past it is refused at once with 503 unavailable, and its client tries another node (0 sets no bound)")
	readCacheMB := fs.Int("read-cache-mb", cfg.ReadCacheBytes>>20, "memory for committed records read before, so that reads of hot keys skip the disk layer (MiB; 0 turns the cache off)")
	fs.DurationVar(&cfg.LeaderWait, "leader-wait", cfg.LeaderWait, "how long a request waits for a leader or a quorum before failing with 503")
	fs.DurationVar(&cfg.DefaultMaxStaleness, "max-staleness", cfg.DefaultMaxStaleness, "default bound of bounded reads")
	fs.DurationVar(&cfg.Raft.HeartbeatTimeout, "raft-heartbeat-timeout", cfg.Raft.HeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&cfg.Raft.ElectionTimeout, "raft-election-timeout", cfg.Raft.ElectionTimeout, "Raft election timeout")
	fs.DurationVar(&cfg.Raft.LeaderLeaseTimeout, "raft-lease-timeout", cfg.Raft.LeaderLeaseTimeout, "Raft leader lease timeout (a leader that cannot reach a quorum for this long steps down)")
	fs.Uint64Var(&cfg.Raft.SnapshotThreshold, "snapshot-threshold", cfg.Raft.SnapshotThreshold, "log entries between snapshots")
	fs.Uint64Var(&cfg.Raft.TrailingLogs, "trailing-logs", cfg.Raft.TrailingLogs, "log entries kept behind a snapshot for slow followers")
	fs.IntVar(&cfg.Raft.ProposalBatch, "proposal-batch", cfg.Raft.ProposalBatch, "most strong writes the leader packs into one log entry; 1 writes one entry per write, which nodes older than packing need while they are still in the cluster (they cannot read packed entries)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on the HTTP address")
	fs.BoolVar(&cfg.TestFaults, "test-faults", false, "TEST ONLY: enable the fault-injection hook at /v1/test/faults (docs/faults.md); never in production")
	gcPercent := fs.Int("gc-percent", defaultGCPercent, "garbage-collector target: how far the heap may grow past live data before a collection, in per cent (Go's GOGC); higher spends memory to save CPU. When this flag is not given, a GOGC environment variable wins")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")

	if err := applyEnv(fs); err != nil {
		return cfg, proc, usageErrorf("%v", err)
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stderr)
		fmt.Fprintln(stderr, "usage: kvd --id ID [flags]\n\nRuns one dialkv node. Flags (each also settable as KV_<NAME>, e.g. KV_DATA_DIR):")
		fs.PrintDefaults()
		if plant.Built {
			fmt.Fprintf(stderr, "\nThis is a plantbugs build: %s=NAME,... switches on planted bugs (internal/plant): %s\n", plant.EnvVar, strings.Join(plant.Names(), ", "))
		}
		return cfg, proc, err
	} else if err != nil {
		return cfg, proc, usageErrorf("%v (kvd -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return cfg, proc, usageErrorf("unexpected argument %q (see kvd -h)", fs.Arg(0))
	}
	if *id == "" {
		// Checked here, alone: the other settings that depend on it (the data directory's
		// default, gossip's node name) would each complain about it too.
		return cfg, proc, usageErrorf("--id is required (or KV_ID): the node's stable name, such as n1 (usage: kvd --id ID [flags]; kvd -h lists the flags)")
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return cfg, proc, usageErrorf("%v", err)
	}
	proc.logger = logger
	if proc.gcPercent, err = chooseGCPercent(fs, *gcPercent, os.LookupEnv); err != nil {
		return cfg, proc, usageErrorf("%v", err)
	}
	cfg.ID = *id
	cfg.Raft.RaftAddr = *raftAddr
	cfg.DataDir = *dataDir
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join("data", cfg.ID)
	}
	if cfg.Raft.Bootstrap, err = node.ParsePeers(*bootstrap); err != nil {
		return cfg, proc, usageErrorf("--bootstrap: %v", err)
	}
	if *joinOthers && cfg.Join != "" && len(cfg.Raft.Bootstrap) > 0 {
		if slices.ContainsFunc(cfg.Raft.Bootstrap, func(p strong.Peer) bool { return p.ID == cfg.ID }) {
			cfg.Join = ""
		} else {
			cfg.Raft.Bootstrap = nil
		}
	}
	for _, addr := range strings.Split(*gossipJoin, ",") {
		if addr = strings.TrimSpace(addr); addr != "" {
			cfg.Gossip.Peers = append(cfg.Gossip.Peers, addr)
		}
	}
	if *gossipAdvertise != "" {
		if cfg.Gossip.AdvertiseAddr, err = resolveIPPort(*gossipAdvertise); err != nil {
			return cfg, proc, advertiseError(err)
		}
	}
	if *readCacheMB < 0 || *readCacheMB > 1<<20 {
		return cfg, proc, usageErrorf("--read-cache-mb %d must be between 0 (off) and %d", *readCacheMB, 1<<20)
	}
	cfg.ReadCacheBytes = *readCacheMB << 20
	if *inflightMB < 0 || *inflightMB > 1<<30 {
		return cfg, proc, usageErrorf("--max-inflight-mb %d must be between 0 (no bound) and %d", *inflightMB, 1<<30)
	}
	cfg.MaxInflightBytes = *inflightMB << 20
	cfg.Logger = logger
	if err := cfg.Validate(); err != nil {
		return cfg, proc, usageErrorf("%v", err) // every setting it checks came from a flag or KV_*
	}
	return cfg, proc, nil
}

// resolveIPPort turns HOST:PORT into IP:PORT (memberlist needs an IP). A container's own name
// resolves through /etc/hosts, so this works before any DNS server answers; an IPv4 address is
// preferred when the name has both.
func resolveIPPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" || net.ParseIP(host) != nil {
		return addr, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("%s has no address", host)
	}
	best := ips[0]
	for _, ip := range ips {
		if ip.To4() != nil {
			best = ip
			break
		}
	}
	return net.JoinHostPort(best.String(), port), nil
}

// advertiseError is resolveIPPort's error for --gossip-advertise: a usage error (exit 2) like
// any other bad flag, unless the name's lookup failed for now (a DNS server timed out or
// failed), which may pass by the next start (exit 1).
func advertiseError(err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) && !dns.IsNotFound && (dns.IsTimeout || dns.IsTemporary) {
		return fmt.Errorf("--gossip-advertise: %w", err)
	}
	return usageErrorf("--gossip-advertise: %v", err)
}

// chooseGCPercent decides the GC target: --gc-percent (or KV_GC_PERCENT) when given; else 0,
// keeping the runtime's, when GOGC is set; else value (the flag's default).
func chooseGCPercent(fs *flag.FlagSet, value int, lookupEnv func(string) (string, bool)) (int, error) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "gc-percent" })
	if value < 10 || value > 100000 {
		return 0, fmt.Errorf("--gc-percent %d must be between 10 and 100000", value)
	}
	if _, ok := lookupEnv("GOGC"); ok && !given {
		return 0, nil
	}
	return value, nil
}

// applyEnv sets each flag from KV_<NAME> when that variable exists.
func applyEnv(fs *flag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := "KV_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
