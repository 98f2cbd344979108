package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CorruptFileError is ErrCorrupt for a whole bbolt file: it does not open, or a page reachable
// from its root does not read as bbolt wrote it.
type CorruptFileError struct {
	Path string
	// Cause is what bbolt said, or the panic it raised.
	Cause string
}

func (e *CorruptFileError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.Path, ErrCorrupt, e.Cause)
}

func (e *CorruptFileError) Unwrap() error { return ErrCorrupt }

// CheckFile reads every page reachable from the root of the bbolt file at path, in a goroutine
// of its own that turns bbolt's panics (and memory faults, from a file cut short under its
// mapping) into a *CorruptFileError. A missing or empty file passes: bbolt creates it.
//
// Call it before opening the file for use. bbolt opens a file whose freelist is not synced (as
// ours are) by walking every page in a goroutine it starts itself, and asserts on a page it
// cannot make sense of: that panic cannot be recovered, and the trace it leaves names no file.
// After CheckFile, that walk meets the same pages. It costs one more read of the file, which
// that walk brings into the page cache anyway.
func CheckFile(path string, timeout time.Duration) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && info.Size() == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		// A page of the mapping past the end of a truncated file faults: a panic here, not
		// the process's end.
		debug.SetPanicOnFault(true)
		var db *bolt.DB
		defer func() {
			if r := recover(); r != nil {
				done <- &CorruptFileError{Path: path, Cause: fmt.Sprintf("bbolt panicked reading it: %v", r)}
			}
			if db != nil {
				db.Close()
			}
		}()
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
		if err != nil {
			if errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrChecksum) || errors.Is(err, bolt.ErrVersionMismatch) || errors.Is(err, bolt.ErrInvalidMapping) {
				err = &CorruptFileError{Path: path, Cause: err.Error()}
			} else {
				err = fmt.Errorf("open %s: %w", path, err)
			}
			done <- err
			return
		}
		var sum byte
		done <- db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walkBucket(b, &sum) })
		})
	}()
	return <-done
}

// walkBucket reads every page of b and of the buckets inside it, and the last byte of every
// value (the last page of a value that overflows) into *sum.
func walkBucket(b *bolt.Bucket, sum *byte) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				if err := walkBucket(sub, sum); err != nil {
					return err
				}
			}
			continue
		}
		if len(v) > 0 {
			*sum ^= v[len(v)-1]
		}
	}
	return nil
}
