package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// damage is a way a bbolt file gets damaged on disk.
type damage struct {
	name string
	do   func(data []byte, pageSize int) []byte
}

var damages = []damage{
	{"page headers flipped", func(data []byte, ps int) []byte {
		for off := 2 * ps; off+8 <= len(data); off += ps {
			for i := off; i < off+8; i++ {
				data[i] ^= 0xa5
			}
		}
		return data
	}},
	{"elements flipped", func(data []byte, ps int) []byte {
		for off := 2 * ps; off+40 <= len(data); off += ps {
			for i := off + 16; i < off+40; i++ {
				data[i] ^= 0x5a
			}
		}
		return data
	}},
	{"cut after the meta pages", func(data []byte, ps int) []byte { return data[:2*ps] }},
	{"cut after three pages", func(data []byte, ps int) []byte { return data[:3*ps] }},
	{"cut inside the first page", func(data []byte, ps int) []byte { return data[:100] }},
	{"both meta pages flipped", func(data []byte, ps int) []byte {
		for _, off := range []int{0, ps} {
			for i := off + 16; i < off+64; i++ {
				data[i] ^= 0xff
			}
		}
		return data
	}},
}

// mustDamage applies d to the file at path.
func mustDamage(t *testing.T, path string, d damage) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, d.do(data, os.Getpagesize()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A damaged page makes bbolt panic, and when a file's freelist is not synced (ours are not) it
// does so while it opens the file, in a goroutine of its own: the process died with a trace that
// named no file. Open refuses such a file instead, naming it and saying what to do, and takes
// the intact files it made.
func TestOpenRefusesADamagedFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "state.db")
	s := mustOpen(t, src)
	for i := range 20 {
		kvs := map[string]consistency.Value{}
		for j := range 100 {
			kvs[fmt.Sprintf("key-%02d-%03d", i, j)] = val(strings.Repeat("v", 100), int64(i*1000+j+1))
		}
		mustPut(t, s, uint64(i+1), kvs)
	}
	var ws []replication.Write
	for i := range 500 {
		ws = append(ws, replication.Write{Key: fmt.Sprintf("tentative-%03d", i), Value: consistency.Value{Version: consistency.Version{Wall: int64(100000 + i), Node: "n2"}, Data: []byte(strings.Repeat("t", 100))}})
	}
	if _, err := s.MergeTentative(ws); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"state.db", "state.tentative.db"} {
		for _, d := range damages {
			t.Run(file+"/"+d.name, func(t *testing.T) {
				dir := t.TempDir()
				for _, name := range []string{"state.db", "state.tentative.db", "state.db.mark"} {
					data, err := os.ReadFile(filepath.Join(filepath.Dir(src), name))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				path := filepath.Join(dir, "state.db")
				if err := CheckFile(path, DefaultOptions().OpenTimeout); err != nil {
					t.Fatalf("CheckFile on the intact copy: %v", err)
				}
				damaged := filepath.Join(dir, file)
				mustDamage(t, damaged, d)
				err := CheckFile(damaged, DefaultOptions().OpenTimeout)
				var cf *CorruptFileError
				if !errors.As(err, &cf) || cf.Path != damaged || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("CheckFile: %v; want a *CorruptFileError naming %s", err, damaged)
				}
				st, err := Open(path, Options{OpenTimeout: DefaultOptions().OpenTimeout, InitialMmapSize: 1 << 20})
				if err == nil {
					st.Close()
					t.Fatal("Open took the damaged file")
				}
				if !errors.As(err, &cf) || cf.Path != damaged {
					t.Fatalf("Open: %v; want a *CorruptFileError naming %s", err, damaged)
				}
				if file == "state.db" && !strings.Contains(err.Error(), "move "+path+" aside") {
					t.Errorf("Open: %v; does not say what to do", err)
				}
				t.Logf("refused: %v", err)
			})
		}
	}
}

func TestCheckFileTakesMissingAndEmptyFiles(t *testing.T) {
	dir := t.TempDir()
	if err := CheckFile(filepath.Join(dir, "missing.db"), DefaultOptions().OpenTimeout); err != nil {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(empty, DefaultOptions().OpenTimeout); err != nil {
		t.Errorf("empty file: %v", err)
	}
}
