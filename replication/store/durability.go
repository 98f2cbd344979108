package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dialkv/dialkv/internal/durable"
)

// The committed layer's file is written without fsync (bbolt NoSync): it can always be rebuilt
// from the Raft snapshot and log, which are durable before a write is acknowledged. A process
// crash loses nothing of it (the kernel's page cache holds every write), but a machine crash may
// leave the file torn, since bbolt reuses pages an unsynced meta page no longer references.
//
// A small mark file next to it tells the two apart. While the store is open the mark says
// "dirty" and names the kernel's boot id; Close syncs the file and marks it "clean". At Open, a
// dirty mark from another boot means the machine went down with unsynced pages: the file is set
// aside and the committed layer starts empty, so the engine restores the newest snapshot and
// raft replays the log after it.

const bootIDPath = "/proc/sys/kernel/random/boot_id"

// SystemBootID names the running kernel's boot ("" where the platform has no such id: every
// unclean stop then counts as a machine crash, which is safe and only costs a rebuild).
func SystemBootID() string {
	raw, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}

type mark struct {
	boot  string
	clean bool
}

func markPath(dbPath string) string { return dbPath + ".mark" }

func readMark(dbPath string) (m mark, ok bool, err error) {
	raw, err := os.ReadFile(markPath(dbPath))
	if errors.Is(err, fs.ErrNotExist) {
		return mark{}, false, nil
	}
	if err != nil {
		return mark{}, false, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "boot":
			m.boot = v
		case "state":
			m.clean = v == "clean"
		}
	}
	return m, true, nil
}

// Opened reports whether the store at path was opened before: Open writes the mark durably at
// every start, after the tentative layer's file is created and initialized (synced) and before
// anything is acknowledged, so once it is there that file must be there too, and not empty.
// (Versions before the tentative layer had its own file wrote no mark.)
func Opened(path string) (bool, error) {
	_, ok, err := readMark(path)
	return ok, err
}

// writeMark replaces the mark durably (write, fsync, rename, fsync the directory): a dirty mark
// must be on disk before the first unsynced write it covers.
func writeMark(dbPath string, m mark) error {
	state := "dirty"
	if m.clean {
		state = "clean"
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# dialkv: whether %s was closed cleanly (it is written without fsync)\nboot=%s\nstate=%s\n", filepath.Base(dbPath), m.boot, state)
	return durable.WriteFile(markPath(dbPath), buf.Bytes())
}

// mayBeTorn reports whether the committed layer's file at path may have lost unsynced writes:
// it was open (dirty) when a different boot of the machine ended.
func mayBeTorn(path, boot string) (bool, error) {
	m, ok, err := readMark(path)
	if err != nil || !ok {
		// No mark: a new file, or one written by a version that synced every commit.
		return false, err
	}
	return !m.clean && (boot == "" || m.boot != boot), nil
}

// setAside moves a possibly torn committed-layer file out of the way (kept for inspection,
// replacing any earlier one) so that Open starts the committed layer empty.
func setAside(path string) (string, error) {
	aside := path + ".torn"
	if err := os.Rename(path, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return aside, durable.SyncDir(filepath.Dir(path))
}
