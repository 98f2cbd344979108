// Command kvctl is the dialkv command-line client and local-cluster tool (run `kvctl help`).
//
// The key commands (get, put, cas, del, list, status) are thin wrappers over package client:
// they parse flags, make one call (list: one per page), and print the value or the metadata the server reported, so
// a script sees exactly the trade-off it got. The cluster commands start and stop local kvd
// processes under a data directory whose cluster.json and pid files are their only state. kvctl
// must never retry a write itself (the client decides what is safe to re-send), and on failure
// it prints exactly one line, "kvctl: reason", on stderr and exits non-zero (report lists the
// statuses).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/dialkv/dialkv/client"
)

func main() {
	// Ctrl-C cancels the request in flight; the client then reports what it knows (a write
	// may have happened) instead of the process dying mid-call.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(report(os.Stderr, err))
}

// run parses args, dispatches to the command and returns its error. It touches the process only
// through its arguments, so tests drive it like a user.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	var opts options
	fs := newFlagSet(&opts, getenv)
	// kvctl bench has many flags of its own: hand it everything after its name, so its flags may
	// stand anywhere too (kvctl's own flags before "bench" still apply).
	if i := commandWord(fs, args); i >= 0 && args[i] == "bench" {
		if _, err := parseInterspersed(fs, args[:i]); err != nil {
			return flagHint(err, args)
		}
		opts.given = visited(fs)
		// Flags before "bench" mean what they mean after it: -h shows its help (it ran the
		// load instead), and a flag bench does not take (--consistency, -v) is refused as it
		// is after the word, not ignored while the load runs at another level.
		if err := checkFlags(fs, benchCommand()); err != nil {
			return err
		}
		opts.fallBackToLocalCluster()
		rest := slices.Clone(args[i+1:])
		if j := slices.Index(rest, "--"); j >= 0 { // the separator older usage needed
			rest = slices.Delete(rest, j, j+1)
		}
		return runBench(ctx, &invocation{opts: &opts, args: rest, stdin: stdin, stdout: stdout, stderr: stderr})
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return flagHint(err, args)
	}
	opts.given = visited(fs)
	if len(positional) == 0 {
		if opts.help {
			writeUsage(stdout, fs)
			return nil
		}
		writeUsage(stderr, fs)
		return usageErrorf("no command given")
	}
	if positional[0] == "help" {
		return runHelp(stdout, fs, positional[1:])
	}
	cmd, rest, ok := findCommand(positional)
	if !ok {
		return unknownCommand(positional)
	}
	if opts.help {
		writeCommandUsage(stdout, fs, cmd)
		return nil
	}
	if err := checkFlags(fs, cmd); err != nil {
		return err
	}
	if len(rest) < cmd.minArgs || len(rest) > cmd.maxArgs {
		return usageErrorf("usage: kvctl %s %s", cmd.name, cmd.args)
	}
	if slices.Contains(cmd.flags, "endpoints") {
		opts.fallBackToLocalCluster()
	}
	return cmd.run(ctx, &invocation{opts: &opts, args: rest, stdin: stdin, stdout: stdout, stderr: stderr})
}

// visited names the flags set on fs.
func visited(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// runHelp prints the help of the command named by words, or the whole help.
func runHelp(stdout io.Writer, fs *flag.FlagSet, words []string) error {
	if len(words) == 0 {
		writeUsage(stdout, fs)
		return nil
	}
	cmd, rest, ok := findCommand(words)
	if !ok && len(words) == 1 {
		if group := commandGroup(words[0]); len(group) > 0 {
			writeGroupUsage(stdout, words[0], group)
			return nil
		}
	}
	if !ok || len(rest) > 0 {
		return usageErrorf("no command %q (see kvctl help)", strings.Join(words, " "))
	}
	writeCommandUsage(stdout, fs, cmd)
	return nil
}

// flagHint adds to an unknown flag's error where the flags are listed: the help of the command
// args name, else the whole help. Other errors are returned as they are.
func flagHint(err error, args []string) error {
	var ue *usageError
	if !errors.As(err, &ue) || !strings.HasPrefix(ue.msg, unknownFlag) {
		return err
	}
	var words []string
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			words = append(words, a)
		}
	}
	// The words include flags' values: the command is the first run of words that names one.
	for i := range words {
		if cmd, _, ok := findCommand(words[i:]); ok {
			if cmd.name == "bench" {
				return usageErrorf("%s (kvctl bench -h lists its flags)", ue.msg)
			}
			return usageErrorf("%s (kvctl help %s lists its flags)", ue.msg, cmd.name)
		}
	}
	return usageErrorf("%s (kvctl help lists the flags)", ue.msg)
}

// unknownCommand is the usage error for positional words that name no command: one line, as
// for every error, naming the subcommands when the first word is a group such as "cluster", or
// the command a user of another tool probably meant.
func unknownCommand(words []string) error {
	if group := commandGroup(words[0]); len(group) > 0 {
		var subs []string
		for _, c := range group {
			subs = append(subs, strings.Fields(c.name)[1])
		}
		what := "needs one of"
		if len(words) > 1 {
			what = fmt.Sprintf("has no command %q; it has", words[1])
		}
		return usageErrorf("kvctl %s %s: %s (see kvctl help %s)", words[0], what, strings.Join(subs, ", "), words[0])
	}
	if alias, ok := commandAliases[words[0]]; ok {
		return usageErrorf("unknown command %q: did you mean kvctl %s? (kvctl help lists the commands)", words[0], alias)
	}
	return usageErrorf("unknown command %q (kvctl help lists the commands)", words[0])
}

// commandAliases maps the names other key-value tools use (consul kv, etcdctl, redis-cli) to
// kvctl's, for the hint of an unknown command.
var commandAliases = map[string]string{
	"delete": "del", "rm": "del",
	"set": "put", "write": "put",
	"read": "get",
	"ls":   "list", "keys": "list",
}

// commandGroup returns the commands whose name starts with the word group ("cluster",
// "member"), in help order; none when group is not such a word.
func commandGroup(group string) []command {
	var cmds []command
	for _, c := range commands() {
		if words := strings.Fields(c.name); len(words) > 1 && words[0] == group {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// Exit statuses, as kvctl help and the README list them. The kinds a script acts on differently
// have their own: after a conflict it reads the key again and retries, after an outcome unknown
// it must read the key to learn whether the write happened, and a missing key is often no
// failure at all.
const (
	exitFailure        = 1 // any other failure
	exitUsage          = 2 // a mistake in the command line
	exitNotFound       = 3 // the key (or member) does not exist
	exitConflict       = 4 // a --version or --absent condition failed
	exitOutcomeUnknown = 5 // a write may or may not have been applied
)

// report prints err as one line on stderr and returns the exit status: 0 for success, else one
// of the exit* constants.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	// One line, whatever the error's text holds: scripts read the last line of stderr.
	msg := strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(err.Error()))
	fmt.Fprintf(stderr, "kvctl: %s\n", msg)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case client.IsNotFound(err):
		return exitNotFound
	case client.IsConflict(err):
		return exitConflict
	case client.IsOutcomeUnknown(err):
		return exitOutcomeUnknown
	}
	return exitFailure
}
