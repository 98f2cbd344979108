package jepsen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// errNotRunning: the node's process is not running (killed, or never started).
var errNotRunning = errors.New("not running")

// proc is one kvd process, restartable on its data directory. Its output is appended to
// logPath. Safe for concurrent use.
type proc struct {
	id      string
	argv    []string // the whole command line, including any `ip netns exec NS` prefix
	env     []string // added to the harness's environment
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited and been reaped
	paused bool
}

// setArgv replaces the command line the next start runs.
func (p *proc) setArgv(argv []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.argv = argv
}

// start starts the process; it must not be running.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
		return fmt.Errorf("%s: already running", p.id)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== kvjepsen %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.argv, " "))
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	if len(p.env) > 0 {
		cmd.Env = append(os.Environ(), p.env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: starting %s: %w", p.id, p.argv[0], err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // how it ended is in its log; the harness only needs to know it did
		logf.Close()
		close(done)
	}()
	p.cmd, p.done, p.paused = cmd, done, false
	return nil
}

func (p *proc) runningLocked() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// running reports whether the process is alive (paused counts as alive).
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

// isPaused reports whether the process is alive and stopped with SIGSTOP.
func (p *proc) isPaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked() && p.paused
}

// exited returns a channel closed when the current process has exited (nil if never started).
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// kill sends SIGKILL and waits (at most wait) until the process is reaped.
func (p *proc) kill(wait time.Duration) error {
	p.mu.Lock()
	if !p.runningLocked() {
		p.mu.Unlock()
		return nil
	}
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: SIGKILL: %w", p.id, err)
	}
	select {
	case <-done:
		p.mu.Lock()
		p.paused = false
		p.mu.Unlock()
		return nil
	case <-time.After(wait):
		return fmt.Errorf("%s: still running %v after SIGKILL", p.id, wait)
	}
}

// stop asks the process to exit (SIGTERM, after SIGCONT if it was paused) and kills it if it
// has not exited within grace.
func (p *proc) stop(grace time.Duration) error {
	p.mu.Lock()
	if !p.runningLocked() {
		p.mu.Unlock()
		return nil
	}
	cmd, done, paused := p.cmd, p.done, p.paused
	p.mu.Unlock()
	if paused {
		_ = signalContinue(cmd.Process)
	}
	_ = signalTerminate(cmd.Process)
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		return p.kill(5 * time.Second)
	}
}

// pause stops the process with SIGSTOP.
func (p *proc) pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return fmt.Errorf("%s: %w", p.id, errNotRunning)
	}
	if err := signalStop(p.cmd.Process); err != nil {
		return fmt.Errorf("%s: SIGSTOP: %w", p.id, err)
	}
	p.paused = true
	return nil
}

// resume continues a paused process with SIGCONT.
func (p *proc) resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		p.paused = false
		return nil
	}
	if err := signalContinue(p.cmd.Process); err != nil {
		return fmt.Errorf("%s: SIGCONT: %w", p.id, err)
	}
	p.paused = false
	return nil
}

// logTail returns the last n lines of the process' log.
func (p *proc) logTail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 16 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-window, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitExited waits until the process exits or ctx ends; it reports whether it exited.
func (p *proc) waitExited(ctx context.Context) bool {
	done := p.exited()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
