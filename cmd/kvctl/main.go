// Command kvctl is the dialkv command-line client and local-cluster tool (run `kvctl help`).
//
// The key commands (get, put, cas, del, list, status) are thin wrappers over package client:
// they parse flags, make one call, and print the value or the metadata the server reported, so
// a script sees exactly the trade-off it got. The cluster commands start and stop local kvd
// processes under a data directory whose cluster.json and pid files are their only state. kvctl
// must never retry a write itself (the client decides what is safe to re-send), and on failure
// it prints exactly one line, "kvctl: reason", on stderr and exits non-zero.
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
			return err
		}
		rest := slices.Clone(args[i+1:])
		if j := slices.Index(rest, "--"); j >= 0 { // the separator older usage needed
			rest = slices.Delete(rest, j, j+1)
		}
		return runBench(ctx, &invocation{opts: &opts, args: rest, stdin: stdin, stdout: stdout, stderr: stderr})
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
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
		if positional[0] == "cluster" {
			return usageErrorf("kvctl cluster needs one of: up, down, kill, stop, restart, rejoin, status (see kvctl help)")
		}
		if positional[0] == "member" {
			return usageErrorf("kvctl member needs: remove ID (see kvctl help member remove)")
		}
		writeUsage(stderr, fs)
		return usageErrorf("unknown command %q", positional[0])
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
	return cmd.run(ctx, &invocation{opts: &opts, args: rest, stdin: stdin, stdout: stdout, stderr: stderr})
}

// runHelp prints the help of the command named by words, or the whole help.
func runHelp(stdout io.Writer, fs *flag.FlagSet, words []string) error {
	if len(words) == 0 {
		writeUsage(stdout, fs)
		return nil
	}
	cmd, rest, ok := findCommand(words)
	if !ok || len(rest) > 0 {
		return usageErrorf("no command %q (see kvctl help)", strings.Join(words, " "))
	}
	writeCommandUsage(stdout, fs, cmd)
	return nil
}

// report prints err as one line on stderr and returns the exit status: 0 for success, 2 for a
// usage error, 1 for anything else.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	// One line, whatever the error's text holds: scripts read the last line of stderr.
	msg := strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(err.Error()))
	fmt.Fprintf(stderr, "kvctl: %s\n", msg)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
