package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nodeExit reports that a kvd process kvctl started has exited.
type nodeExit struct {
	id  string
	err error
}

// startNode starts n's kvd detached, with output appended to its log and its pid in its pid
// file. A goroutine reaps the process and reports its exit on exits (which must have room), so
// a node that dies at once is noticed instead of waited for.
func startNode(bin string, n clusterNode, exits chan<- nodeExit) (int, error) {
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	// The child holds its own descriptor; ours is only for the header line.
	defer logf.Close()
	fmt.Fprintf(logf, "=== kvctl %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(n.Args, " "))
	cmd := exec.Command(bin, n.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = n.Dir
	if err := detach(cmd); err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", n.ID, err)
	}
	pid := cmd.Process.Pid
	go func() {
		err := cmd.Wait()
		exits <- nodeExit{id: n.ID, err: err}
	}()
	if err := writeFileAtomic(n.pidPath(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		// A node nobody can find again must not keep running.
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("%s: writing pid file: %w", n.ID, err)
	}
	return pid, nil
}

// checkPortsFree fails, naming the port, when another process holds one of the addresses n's
// kvd would bind: HTTP and Raft over TCP, gossip over TCP and UDP.
func checkPortsFree(n clusterNode) error {
	for _, p := range []struct{ what, network, addr string }{
		{"HTTP", "tcp", n.HTTP}, {"Raft", "tcp", n.Raft}, {"gossip", "tcp", n.Gossip}, {"gossip", "udp", n.Gossip},
	} {
		if p.addr == "" {
			continue
		}
		var c io.Closer
		var err error
		if p.network == "udp" {
			c, err = net.ListenPacket(p.network, p.addr)
		} else {
			c, err = net.Listen(p.network, p.addr)
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s's %s port %s is in use by another process (another local cluster? ss -tulpn names it)", n.ID, p.what, p.addr)
		}
		if err != nil {
			return fmt.Errorf("%s's %s address %s: %w", n.ID, p.what, p.addr, err)
		}
		c.Close()
	}
	return nil
}

// writeLogTail prints the last lines of n's log, where kvd says why it failed.
func writeLogTail(w io.Writer, n clusterNode) {
	lines, err := tailLines(n.logPath(), logTailLines)
	if err != nil {
		fmt.Fprintf(w, "--- %s: cannot read %s: %v\n", n.ID, n.logPath(), err)
		return
	}
	fmt.Fprintf(w, "--- %s: last lines of %s\n", n.ID, n.logPath())
	for _, l := range lines {
		fmt.Fprintf(w, "    %s\n", l)
	}
}

// kvdReason returns the "kvd: ..." line with which kvd last exited on an error, from the end of
// n's log (after its latest start); "" when there is none.
func kvdReason(n clusterNode) string {
	lines, err := tailLines(n.logPath(), logTailLines)
	if err != nil {
		return ""
	}
	for i := len(lines) - 1; i >= 0 && !strings.HasPrefix(lines[i], "=== kvctl "); i-- {
		if strings.HasPrefix(lines[i], "kvd: ") {
			return lines[i]
		}
	}
	return ""
}

// tailLines returns the last n lines of the file at path, reading only its end.
func tailLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const window = 16 << 10
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-window, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // the first line is probably cut
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// stopNodes sends SIGTERM to every running node, gives them stopGrace to exit together, then
// SIGKILLs the rest. It returns how many were running.
func stopNodes(ctx context.Context, nodes []clusterNode, out io.Writer) (int, error) {
	pids := map[string]int{}
	for _, n := range nodes {
		pid, err := runningPID(n)
		if err != nil {
			return 0, err
		}
		if pid == 0 {
			removePIDFile(n)
			continue
		}
		if err := signalProcess(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return 0, fmt.Errorf("%s: SIGTERM pid %d: %w", n.ID, pid, err)
		}
		pids[n.ID] = pid
	}
	// One grace period for all: they shut down in parallel, so waiting for each in turn must
	// not add up their deadlines.
	termCtx, cancel := context.WithTimeout(ctx, stopGrace)
	defer cancel()
	var failed []string
	for _, n := range nodes {
		pid, ok := pids[n.ID]
		if !ok {
			continue
		}
		how := "stopped"
		if !waitGone(termCtx, pid, n, stopGrace) {
			how = fmt.Sprintf("killed (still running %v after SIGTERM)", stopGrace)
			if err := signalProcess(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return 0, fmt.Errorf("%s: SIGKILL pid %d: %w", n.ID, pid, err)
			}
			// Not cut short by Ctrl-C, which may be what ended the grace: a SIGKILLed node
			// goes within killGrace, and its pid file must go with it.
			if !waitGone(context.WithoutCancel(ctx), pid, n, killGrace) {
				failed = append(failed, fmt.Sprintf("%s (pid %d)", n.ID, pid))
				continue
			}
		}
		removePIDFile(n)
		fmt.Fprintf(out, "%s: %s (pid %d)\n", n.ID, how, pid)
	}
	if len(failed) > 0 {
		return 0, fmt.Errorf("still running after SIGKILL: %s", strings.Join(failed, ", "))
	}
	return len(pids), nil
}

// waitGone polls until pid no longer runs node n, for at most d (or until ctx ends). The
// process is not kvctl's child, so there is nothing to wait on but its pid.
func waitGone(ctx context.Context, pid int, n clusterNode, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for !processGone(pid, n) {
		select {
		case <-ctx.Done():
			return processGone(pid, n)
		case <-ticker.C:
		}
	}
	return true
}

// processGone reports whether pid, which ran node n, has finished exiting, so that its ports
// are free: no such process, a zombie with no thread left, or another program (pid reused). A
// dying Go process loses its command line (its memory) before its last thread closes its sockets,
// and its main thread can be a zombie while others still run: neither is gone yet.
func processGone(pid int, n clusterNode) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		if _, serr := os.Stat("/proc/self"); serr != nil {
			return !isNodeProcess(pid, n) // no /proc (macOS, BSD)
		}
		return true
	}
	var state, threads string
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			switch k {
			case "State":
				state = strings.TrimSpace(v)
			case "Threads":
				threads = strings.TrimSpace(v)
			}
		}
	}
	if strings.HasPrefix(state, "Z") {
		return threads == "1"
	}
	argv, err := procArgv(pid)
	if err != nil {
		return true
	}
	if argv == nil {
		return false // exiting: its memory is gone, its descriptors may not be
	}
	return !isKVDCommand(argv, n)
}

// procArgv is pid's command line as /proc has it: nil when it is empty (a process that is
// exiting, whose memory is gone), an error when /proc has no such process (or no /proc at all).
func procArgv(pid int) ([]string, error) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"), nil
}

func removePIDFile(n clusterNode) {
	// A missing pid file is the goal, not a failure.
	_ = os.Remove(n.pidPath())
}

// readPID returns the pid in n's pid file, 0 when there is none or it holds no pid.
func readPID(n clusterNode) (int, error) {
	b, err := os.ReadFile(n.pidPath())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		// A torn or garbled pid file names no process: treat the node as not running.
		return 0, nil
	}
	return pid, nil
}

// runningPID returns the pid of n's kvd process, 0 when it is not running. A pid file whose
// process is gone, or is now some other program (pids are reused), counts as not running.
func runningPID(n clusterNode) (int, error) {
	pid, err := readPID(n)
	if err != nil || pid == 0 {
		return 0, err
	}
	if !isNodeProcess(pid, n) {
		return 0, nil
	}
	return pid, nil
}

// isNodeProcess reports whether pid is alive and is kvd running node n.
func isNodeProcess(pid int, n clusterNode) bool {
	if pid <= 0 || !processExists(pid) {
		return false
	}
	argv, err := procArgv(pid)
	if err != nil {
		// Without /proc (macOS, BSD) the pid is all there is to go on.
		if _, serr := os.Stat("/proc/self"); serr != nil {
			return true
		}
		return false
	}
	return isKVDCommand(argv, n)
}

// isKVDCommand reports whether argv is kvd started for node n, as planCluster spells it: its id,
// and its data directory, so that a node of the same id from another directory (pid files copied
// with it, cp -r data data.bak) is not taken for n. A zombie has an empty command line and so is
// not running.
func isKVDCommand(argv []string, n clusterNode) bool {
	if len(argv) == 0 || !strings.Contains(filepath.Base(argv[0]), "kvd") {
		return false
	}
	return flagValue(argv[1:], "id") == n.ID && sameDir(flagValue(argv[1:], "data-dir"), n.Dir)
}

// flagValue is the value of the flag name in args (--name V, -name V, --name=V or -name=V), ""
// when it is not there.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if (a == "--"+name || a == "-"+name) && i+1 < len(args) {
			return args[i+1]
		}
		for _, prefix := range []string{"--" + name + "=", "-" + name + "="} {
			if v, ok := strings.CutPrefix(a, prefix); ok {
				return v
			}
		}
	}
	return ""
}

// sameDir reports whether the paths a and b name one directory, spelled alike or not.
func sameDir(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// findKVD locates the kvd binary: --kvd, else next to the running kvctl (make build puts both in
// bin/), else in $PATH.
func findKVD(explicit string) (string, error) {
	exeDir := ""
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		exeDir = filepath.Dir(exe)
	}
	return locateKVD(explicit, exeDir, exec.LookPath)
}

func locateKVD(explicit, exeDir string, lookPath func(string) (string, error)) (string, error) {
	if explicit != "" {
		if !isExecutable(explicit) {
			return "", fmt.Errorf("--kvd %s: not an executable file", explicit)
		}
		return filepath.Abs(explicit)
	}
	var looked []string
	if exeDir != "" {
		candidate := filepath.Join(exeDir, "kvd")
		if isExecutable(candidate) {
			return candidate, nil
		}
		looked = append(looked, "next to kvctl in "+exeDir)
	}
	if p, err := lookPath("kvd"); err == nil {
		return filepath.Abs(p)
	}
	looked = append(looked, "in $PATH")
	return "", fmt.Errorf("kvd binary not found (looked %s): run make build, or pass --kvd PATH", strings.Join(looked, " and "))
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
