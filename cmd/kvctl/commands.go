package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// defaultEndpoints are the nodes of the local cluster `kvctl cluster up` starts on the default
// ports, the endpoints when nothing else names any (localEndpoints).
const defaultEndpoints = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

// options holds every flag of every command. One flag set serves all commands because flags may
// come before the command word, so the parser must know them all; each command then checks that
// only its own flags were given (see command.flags).
type options struct {
	// Talking to the cluster.
	endpoints    string
	timeout      time.Duration
	verbose      bool
	json         bool
	session      string
	consistency  string
	maxStaleness time.Duration
	help         bool

	// Key commands.
	version string
	absent  bool
	prefix  string
	limit   int
	after   string

	// Local cluster commands.
	nodes    int
	basePort int
	dataDir  string
	purge    bool
	wait     time.Duration
	kvd      string

	// Fault commands.
	from   string
	oneWay bool
	delay  time.Duration
	jitter time.Duration
	loss   float64
	offset time.Duration

	watch time.Duration

	// endpointsEnv names the variable that gave --endpoints its default (KV_ENDPOINTS, or
	// KV_HTTP inside a kvd container), empty when it is the local cluster's.
	endpointsEnv string

	// given names the flags set on the command line (by fs.Visit after parsing), for commands
	// where a flag left out and one given its zero value mean different things.
	given map[string]bool
}

// newFlagSet defines every flag on a fresh set bound to o. getenv supplies KV_ENDPOINTS and
// KV_HTTP.
func newFlagSet(o *options, getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("kvctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run, once
	// Left empty, the local cluster's: fallBackToLocalCluster reads which, once the command is
	// known to talk to nodes.
	endpoints := ""
	// KV_HTTP is the node's own address in a kvd container configured through the environment
	// (the image's kvctl runs there: docker exec, the HEALTHCHECK), where the local cluster's
	// addresses answer nothing.
	for _, name := range []string{"KV_ENDPOINTS", "KV_HTTP"} {
		if env := strings.TrimSpace(getenv(name)); env != "" {
			endpoints, o.endpointsEnv = env, name
			break
		}
	}
	fs.StringVar(&o.endpoints, "endpoints", endpoints, "comma-separated host:port `ADDRS` of the nodes to talk to (default $KV_ENDPOINTS, else $KV_HTTP as set in a kvd container, else the local cluster: the nodes ./data/cluster.json lists, 127.0.0.1:7001-7003 without one)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "give up on one node after `D`; a read, or a write that surely was not sent, then tries the next (default 10s; member remove: 2m)")
	fs.BoolVar(&o.verbose, "v", false, "print the response metadata on stderr")
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON object on stdout, or for cluster status one JSON array, an object per node (a key command or status that fails prints its error as one object, {\"error\",\"code\"}: code is the server's, transport when no server answered, empty for kvctl's own errors)")
	fs.StringVar(&o.session, "session", "", "keep the session token in `FILE` (read before the request, updated after; runs that share FILE take turns)")
	fs.StringVar(&o.consistency, "consistency", "", "`LEVEL` of the operation: strong (default) or eventual for writes; strong, bounded, session or eventual for reads")
	fs.DurationVar(&o.maxStaleness, "max-staleness", 0, "a bounded read may be at most `D` stale (server default 1s)")
	fs.BoolVar(&o.help, "h", false, "show help")
	fs.BoolVar(&o.help, "help", false, "show help")

	fs.StringVar(&o.version, "version", "", "write only if the key's current `VERSION` is this one (an empty one is an error, not \"no condition\")")
	fs.BoolVar(&o.absent, "absent", false, "write only if the key does not exist")
	fs.StringVar(&o.prefix, "prefix", "", "list keys that start with `PREFIX` (default: all)")
	fs.IntVar(&o.limit, "limit", 0, "list at most `N` keys (default: every key, read page by page)")
	fs.StringVar(&o.after, "after", "", "list only the keys after `KEY` (strictly), e.g. the last one a --limit list printed")

	fs.IntVar(&o.nodes, "nodes", 0, "start `N` nodes, 1-99 (default 3, or as many as DIR/cluster.json lists)")
	fs.IntVar(&o.basePort, "base-port", defaultBasePort, "lay the ports out from `B`: node i takes HTTP B+i, Raft B+100+i and gossip B+200+i (default 7000; a cluster DIR already holds keeps its own, which later commands read from DIR/cluster.json)")
	fs.StringVar(&o.dataDir, "data-dir", defaultDataDir, "keep the local cluster's data, logs and pid files in `DIR`")
	fs.BoolVar(&o.purge, "purge", false, "also remove the nodes' data, logs and DIR/cluster.json, then DIR if nothing else is left in it")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "wait at most `D` for the cluster (or node) to be ready; must be positive")
	fs.StringVar(&o.kvd, "kvd", "", "the kvd binary `PATH` (default: next to kvctl, else in $PATH)")

	fs.StringVar(&o.from, "from", "", "partition: cut only the links to these `NODES` (comma-separated; default every other node)")
	fs.BoolVar(&o.oneWay, "one-way", false, "partition: drop only the traffic from --from to the node")
	fs.DurationVar(&o.delay, "delay", 0, "slow: delay each outgoing message by `D`")
	fs.DurationVar(&o.jitter, "jitter", 0, "slow: add a random delay of up to `D`")
	fs.Float64Var(&o.loss, "loss", 0, "slow: lose outgoing messages with probability `P` (0-1)")
	fs.DurationVar(&o.watch, "watch", 0, "status: redraw every `D` (e.g. 1s) until interrupted; with --json, one JSON line per refresh instead")
	fs.DurationVar(&o.offset, "offset", 0, "skew: shift the node's clock by `D` (negative: behind)")
	return fs
}

// endpointsSource names where the endpoints came from, for errors: the variable that set them
// when --endpoints was not given, else --endpoints. An error must name what the user typed.
func (o *options) endpointsSource() string {
	if o.endpointsEnv != "" && !o.given["endpoints"] {
		return o.endpointsEnv
	}
	return "--endpoints"
}

// fallBackToLocalCluster points the endpoints, when neither the command line nor the environment
// named any, at the local cluster in the default data dir, wherever its ports are
// (localEndpoints). Read only by the commands that talk to nodes: it reads a file.
func (o *options) fallBackToLocalCluster() {
	if !o.given["endpoints"] && o.endpointsEnv == "" {
		o.endpoints = localEndpoints(defaultDataDir)
	}
}

// splitEndpoints is the list of addresses in an --endpoints value (by default $KV_ENDPOINTS,
// else $KV_HTTP, the node's own address in a kvd container, else the local cluster's).
func splitEndpoints(value string) []string {
	var out []string
	for _, e := range strings.Split(value, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// invocation is one parsed command line, handed to a command's run function.
type invocation struct {
	opts *options
	// args are the positional arguments after the command words.
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// defaultTimeout is --timeout's default.
const defaultTimeout = 10 * time.Second

// removalTimeout is kvctl member remove's timeout unless --timeout says otherwise: the leader
// may take up to a minute and a half (a hand-over of the member's writes, then two log changes).
const removalTimeout = 2 * time.Minute

// command is one kvctl command. Cluster subcommands are named with their two words.
type command struct {
	name    string
	args    string // argument synopsis for help
	summary string
	// flags lists the flags the command accepts (besides -h); others are a usage error rather
	// than silently ignored.
	flags            []string
	minArgs, maxArgs int
	run              func(ctx context.Context, inv *invocation) error
}

// commands returns the command table, in help order.
func commands() []command {
	clientFlags := []string{"endpoints", "timeout"}
	writeFlags := append(slices.Clone(clientFlags), "v", "json", "session", "consistency")
	readFlags := append(slices.Clone(writeFlags), "max-staleness")
	return []command{
		{name: "get", args: "KEY", minArgs: 1, maxArgs: 1, flags: readFlags, run: runGet,
			summary: "print KEY's value on stdout (-v adds metadata on stderr, --json prints value and metadata)"},
		{name: "put", args: "KEY VALUE [--version V | --absent]", minArgs: 2, maxArgs: 2,
			flags: append(slices.Clone(writeFlags), "version", "absent"), run: runPut,
			summary: `write VALUE ("-" reads it from stdin), optionally only if KEY is at version V or absent`},
		{name: "cas", args: "KEY VALUE (--version V | --absent)", minArgs: 2, maxArgs: 2,
			flags: append(slices.Clone(writeFlags), "version", "absent"), run: runCAS,
			summary: "compare-and-set: write only if KEY is at version V, or does not exist (strong only)"},
		{name: "del", args: "KEY", minArgs: 1, maxArgs: 1,
			flags: append(slices.Clone(writeFlags), "version"), run: runDel,
			summary: "delete KEY (--version V: only if it is at version V)"},
		{name: "list", args: "[--prefix P] [--after KEY] [--limit N]", maxArgs: 0,
			flags: append(slices.Clone(readFlags), "prefix", "limit", "after"), run: runList,
			summary: "print key<TAB>value lines for the keys starting with P, in key order, page by page (each page a separate read)"},
		{name: "status", args: "[--watch D]", maxArgs: 0, flags: append(slices.Clone(clientFlags), "json", "watch"), run: runStatus,
			summary: "show the cluster as one node sees it: leader and nodes"},
		{name: "member remove", args: "ID", minArgs: 1, maxArgs: 1, flags: clientFlags, run: runMemberRemove,
			summary: "take member ID out of the cluster for good; a running one hands its writes over and stops (waits up to 2m unless --timeout)"},
		benchCommand(),
		healthCommand(),
		{name: "cluster up", args: "[--nodes N] [--base-port B]", maxArgs: 0, flags: []string{"nodes", "base-port", "data-dir", "wait", "kvd"}, run: runClusterUp,
			summary: "start a local cluster of N kvd processes (node i: HTTP 127.0.0.1:B+i, Raft B+100+i, gossip B+200+i; B is 7000 unless --base-port moves them) and wait until there is a leader and every node is ready"},
		{name: "cluster down", maxArgs: 0, flags: []string{"data-dir", "purge"}, run: runClusterDown,
			summary: "stop every local node (SIGTERM, SIGKILL after 10s); --purge removes the data"},
		{name: "cluster kill", args: "NODE", minArgs: 1, maxArgs: 1, flags: []string{"data-dir"}, run: runClusterKill,
			summary: "SIGKILL one local node"},
		{name: "cluster stop", args: "NODE", minArgs: 1, maxArgs: 1, flags: []string{"data-dir"}, run: runClusterStop,
			summary: "SIGTERM one local node and wait for it to exit"},
		{name: "cluster restart", args: "NODE", minArgs: 1, maxArgs: 1, flags: []string{"data-dir", "wait", "kvd"}, run: runClusterRestart,
			summary: "kill one local node if it runs, start it again and wait until it knows a leader"},
		{name: "cluster rejoin", args: "NODE", minArgs: 1, maxArgs: 1, flags: []string{"data-dir", "wait", "kvd"}, run: runClusterRejoin,
			summary: "start a node removed with kvctl member remove again, from an empty data directory, joining the others (refused for a node the cluster has not removed)"},
		{name: "cluster partition", args: "NODE [--from N1,N2] [--one-way]", minArgs: 1, maxArgs: 1, flags: []string{"data-dir", "from", "one-way"}, run: runClusterPartition,
			summary: "cut NODE off from the others (or --from some), both ways unless --one-way (test hook, docs/faults.md)"},
		{name: "cluster slow", args: "NODE [--delay D] [--jitter D] [--loss P]", minArgs: 1, maxArgs: 1, flags: []string{"data-dir", "delay", "jitter", "loss"}, run: runClusterSlow,
			summary: "delay (and lose) NODE's outgoing Raft, gossip and node-to-node traffic; at least one of the three flags, all 0 to undo"},
		{name: "cluster skew", args: "NODE --offset D", minArgs: 1, maxArgs: 1, flags: []string{"data-dir", "offset"}, run: runClusterSkew,
			summary: "shift NODE's clock by D (it stamps eventual writes with it, and strong writes too while it leads); --offset 0s puts it back"},
		{name: "cluster heal", maxArgs: 0, flags: []string{"data-dir"}, run: runClusterHeal,
			summary: "clear every fault on every node"},
		{name: "cluster status", maxArgs: 0, flags: []string{"data-dir", "json"}, run: runClusterStatus,
			summary: "show each local node's process and, if it answers, its role, leader and applied index (--json: one JSON array, an object per node)"},
		{name: "help", args: "[COMMAND]", maxArgs: 2, run: nil,
			summary: "show this help, or one command's"},
	}
}

// findCommand picks the command named by the first positional words and returns the remaining
// positional arguments. ok is false when the words name no command.
func findCommand(positional []string) (cmd command, rest []string, ok bool) {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(positional) >= len(words) && slices.Equal(positional[:len(words)], words) {
			return c, positional[len(words):], true
		}
	}
	return command{}, positional, false
}

// checkFlags rejects flags that were set but that cmd does not take.
func checkFlags(fs *flag.FlagSet, cmd command) error {
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "h" && f.Name != "help" && !slices.Contains(cmd.flags, f.Name) {
			bad = append(bad, flagName(f.Name))
		}
	})
	if len(bad) > 0 {
		return usageErrorf("kvctl %s does not take %s (see kvctl help %s)", cmd.name, strings.Join(bad, ", "), cmd.name)
	}
	return nil
}

// writeUsage prints the whole help: commands, then flags.
func writeUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `kvctl is the dialkv command-line client and local-cluster tool.

Usage: kvctl COMMAND [ARGS] [FLAGS]
Flags may stand before or after the arguments; "--" ends the flags (for a value starting with "-").

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nFlags of the key and status commands:\n")
	writeFlagHelp(w, fs, []string{"endpoints", "timeout", "consistency", "max-staleness", "session", "v", "json", "watch"})
	fmt.Fprint(w, "\nFlags of put, cas, del and list:\n")
	writeFlagHelp(w, fs, []string{"version", "absent", "prefix", "after", "limit"})
	fmt.Fprint(w, "\nFlags of the cluster commands:\n")
	writeFlagHelp(w, fs, []string{"nodes", "base-port", "data-dir", "wait", "kvd", "purge", "json"})
	fmt.Fprint(w, "\nFlags of the fault commands (partition, slow, skew; test hook of docs/faults.md):\n")
	writeFlagHelp(w, fs, []string{"from", "one-way", "delay", "jitter", "loss", "offset"})
	fmt.Fprint(w, `
kvctl get prints the value's bytes exactly as stored; when stdout is a terminal it adds a newline
if the value lacks one. kvctl list prints a key or value that would break its line (a tab, a
newline or other control byte, invalid UTF-8, a leading '"') Go-quoted.

Exit status (a failure also prints one line "kvctl: reason" on stderr):
  0  success
  1  the operation failed (no server answered, no leader, a server error, ...)
  2  a mistake in the command line
  3  not found: the key does not exist (get, del), or the member (member remove)
  4  conflict: the --version or --absent condition failed; the key was not written
  5  outcome unknown: the write got no answer, or its node could not tell; it may or may
     not have been applied (read the key to find out before writing again)
`)
}

// writeGroupUsage prints the commands of a group such as "cluster", for kvctl help cluster.
func writeGroupUsage(w io.Writer, group string, cmds []command) {
	fmt.Fprintf(w, "kvctl %s commands (kvctl help %s COMMAND for one's flags):\n", group, group)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
}

// writeCommandUsage prints one command's help.
func writeCommandUsage(w io.Writer, fs *flag.FlagSet, c command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", strings.TrimSpace("kvctl "+c.name+" "+c.args), upperFirst(c.summary))
	if len(c.flags) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		writeFlagHelp(w, fs, c.flags)
	}
}

func writeFlagHelp(w io.Writer, fs *flag.FlagSet, names []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" && !strings.Contains(usage, "default") {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s%s\t%s\n", flagName(name), arg, usage)
	}
	tw.Flush()
}

// flagName is the flag as help spells it: -v for a one-letter name, --json for the others.
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
