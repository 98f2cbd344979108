package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesAndRemoveForgets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "MARK")
	for _, data := range []string{"first\n", "second\n"} {
		if err := WriteFile(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != data {
			t.Fatalf("after WriteFile(%q): %q, %v", data, got, err)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the temporary file is left behind: %v", err)
	}
	for range 2 { // the second time there is nothing to remove: no error either
		if err := Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the file is still there after Remove: %v", err)
	}
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "dir", "MARK"), nil); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}
