package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// Bucket layout. The committed layer is one root bucket of sub-buckets, so Restore can build a
// new one beside it and swap it in with one transaction without touching anything else in the
// file.
var (
	bucketCommitted = []byte("committed")
	bucketKV        = []byte("kv")
	bucketMembers   = []byte("members")
	bucketMeta      = []byte("meta")
	// bucketWatermarks holds, per member, the version below which it reported holding no
	// uncommitted eventual write (carried by its committer batches).
	bucketWatermarks = []byte("watermarks")
	// bucketTombstones indexes the keys whose committed record is a tombstone, so purging scans
	// tombstones only.
	bucketTombstones = []byte("tombstones")
	keyApplied       = []byte("applied_index")
	keyPurgeHorizon  = []byte("purge_horizon")
	// keyNewest is the newest version the applied entries carried (NoteVersion): a node's
	// clock observes it again when it reopens the committed layer or restores it.
	keyNewest = []byte("newest_version")
	// prefixRemoved + id marks a member removed from the cluster (CmdRemove), in the meta bucket
	// so that snapshots carry it. Registering again clears it.
	prefixRemoved = []byte("removed/")
	committedSubs = [][]byte{bucketKV, bucketMembers, bucketMeta, bucketWatermarks, bucketTombstones}
	// bucketRestoring holds a committed layer Restore is building, until it replaces the old one.
	bucketRestoring = []byte("restoring")

	// bucketTentative is the tentative layer: this node's view of eventual writes not yet
	// committed. It is outside the committed root, so Restore never touches it.
	bucketTentative = []byte("tentative")
	// bucketLocal holds this node's own durable facts, in the tentative layer's file (which is
	// synced on every commit): keyClockFloor, see SetClockFloor.
	bucketLocal   = []byte("local")
	keyClockFloor = []byte("clock_floor")
)

// MaxKeySize is the longest key the store can hold, in bytes (bbolt's limit for a bucket key).
const MaxKeySize = bolt.MaxKeySize

// CheckKey refuses, as invalid, a key the store cannot hold: an empty one, or one longer than
// MaxKeySize.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeySize {
		return fmt.Errorf("%w: a key of %d bytes; keys are 1 to %d bytes", replication.ErrInvalid, len(key), MaxKeySize)
	}
	return nil
}

// MaxMemberID is the longest member id the store can hold: removing a member stores a mark
// under prefixRemoved + id, which must fit in MaxKeySize.
const MaxMemberID = MaxKeySize - len("removed/") // len(prefixRemoved)

// snapshotMagic opens every snapshot stream; the digit is the format version.
const snapshotMagic = "dialkv-snapshot-1\n"

var (
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt: a value in one of the store's files does not decode. The error names the
	// file, the bucket and the key, and what to do.
	ErrCorrupt = errors.New("corrupt stored value")
)

// Options tune the bbolt files.
type Options struct {
	// OpenTimeout bounds the wait for the file lock (another process or an unclosed handle).
	OpenTimeout time.Duration
	// InitialMmapSize is reserved address space. It must be large: a long read transaction
	// (snapshot persist) blocks writers whenever the mmap has to grow.
	InitialMmapSize int
	// BootID names the running boot of the machine (nil: SystemBootID). Tests fake a reboot.
	BootID func() string
	// ReadCacheBytes bounds the cache of committed records that Get reads through (cache.go):
	// 0 is DefaultReadCacheBytes, negative turns the cache off.
	ReadCacheBytes int
	// NodeID is the id of the node this store belongs to: storing a tentative write it stamped
	// raises its clock floor (raiseClockFloor). Empty: no write is this node's.
	NodeID string

	// viewTaken, if set, runs in each group commit once its view of the committed layer is
	// open, with the number of merge requests the commit carries (tests interleave a commit
	// there; a commit of drops alone carries none).
	viewTaken func(merges int)
	// restoreTxBytes overrides the package's restoreTxBytes (0: keep it), and restoreStaged, if
	// set, runs after each of Restore's transactions but the last (tests of a restore in parts).
	restoreTxBytes int
	restoreStaged  func()
}

// DefaultOptions are the options kvd uses.
func DefaultOptions() Options {
	return Options{OpenTimeout: 5 * time.Second, InitialMmapSize: 1 << 30}
}

// Store is one node's state: the committed layer in one bbolt file, written without fsync
// (rebuildable from Raft, see durability.go), and the tentative layer in another, fsynced before
// any eventual write is acknowledged.
type Store struct {
	db      *bolt.DB // committed layer
	tdb     *bolt.DB // tentative layer
	path    string
	boot    string
	applied atomic.Uint64
	// Torn reports that Open found the committed layer's file possibly torn by a machine crash
	// and started it empty (the file was kept as TornPath).
	Torn     bool
	TornPath string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever the applied index moves

	// membersGen moves whenever the committed members table changes, so readers can cache it.
	membersGen atomic.Uint64
	// cache holds committed records Get has read (cache.go).
	cache *readCache
	// tentativeEmpty is set after each commit to the tentative layer that leaves it empty, and
	// cleared after each that does not, so that reads skip its transaction while nothing is
	// pending (the usual state). A write is visible to Tentative before MergeTentative returns.
	tentativeEmpty atomic.Bool

	merges    chan mergeRequest // group commit of tentative writes
	viewTaken func(merges int)  // Options.viewTaken
	nodeID    string            // Options.NodeID
	// restoreTxBytes and restoreStaged: Options' (restoreTxBytes defaulted).
	restoreTxBytes int
	restoreStaged  func()
	// layerMu orders a commit against the tentative writes it did not see: Apply holds it from
	// taking its view of the tentative layer until its commit, and commitTentative re-checks the
	// writes it just stored under it (see commitTentative).
	layerMu sync.Mutex

	// drops are tentative entries committed versions have caught up with, for the group
	// committer to delete; prune asks it to check the whole tentative layer (after a restore or
	// a purge). dropWake wakes it; dropsDone moves after each commit that took drops.
	dropMu    sync.Mutex
	drops     []replication.Write
	prune     bool
	dropWake  chan struct{}
	dropsDone atomic.Uint64
	dropsSeen atomic.Uint64

	stop      chan struct{}
	merging   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// TentativePath is where the tentative layer of the store at path lives.
func TentativePath(path string) string { return strings.TrimSuffix(path, ".db") + ".tentative.db" }

// Open opens or creates the store at path (the committed layer) and TentativePath(path).
func Open(path string, opts Options) (*Store, error) {
	boot := SystemBootID
	if opts.BootID != nil {
		boot = opts.BootID
	}
	s := &Store{path: path, boot: boot(), changed: make(chan struct{}), merges: make(chan mergeRequest, 1024), dropWake: make(chan struct{}, 1), stop: make(chan struct{}), viewTaken: opts.viewTaken, nodeID: opts.NodeID, restoreTxBytes: opts.restoreTxBytes, restoreStaged: opts.restoreStaged}
	if s.restoreTxBytes <= 0 {
		s.restoreTxBytes = restoreTxBytes
	}
	cacheBytes := opts.ReadCacheBytes
	if cacheBytes == 0 {
		cacheBytes = DefaultReadCacheBytes
	}
	s.cache = newReadCache(cacheBytes)
	torn, err := mayBeTorn(path, s.boot)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", markPath(path), err)
	}
	if torn {
		if s.TornPath, err = setAside(path); err != nil {
			return nil, fmt.Errorf("store: setting aside %s: %w", path, err)
		}
		s.Torn = true
	}
	if err := CheckFile(TentativePath(path), opts.OpenTimeout); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.tdb, err = bolt.Open(TentativePath(path), 0o600, &bolt.Options{
		Timeout:         opts.OpenTimeout,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opts.InitialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", TentativePath(path), err)
	}
	if err := s.tdb.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketLocal); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketTentative)
		return err
	}); err != nil {
		s.tdb.Close()
		return nil, fmt.Errorf("store: init %s: %w", TentativePath(path), err)
	}
	// The dirty mark must be durable before the first unsynced write.
	if err := writeMark(path, mark{boot: s.boot}); err != nil {
		s.tdb.Close()
		return nil, fmt.Errorf("store: %s: %w", markPath(path), err)
	}
	if err := CheckFile(path, opts.OpenTimeout); err != nil {
		s.tdb.Close()
		if errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w: %s", err, rebuildAdvice(path))
		}
		return nil, fmt.Errorf("store: %w", err)
	}
	s.db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.OpenTimeout,
		NoFreelistSync:  true,
		NoGrowSync:      true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opts.InitialMmapSize,
	})
	if err != nil {
		s.tdb.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketCommitted)
		if err != nil {
			return err
		}
		for _, name := range committedSubs {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		s.applied.Store(readApplied(root))
		if err := dropRestoring(tx); err != nil {
			return err
		}
		return s.moveOldTentative(tx)
	})
	if err != nil {
		s.db.Close()
		s.tdb.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	s.db.NoSync = true
	if err := s.tdb.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketTentative).Cursor().First()
		s.tentativeEmpty.Store(k == nil)
		return nil
	}); err != nil {
		s.db.Close()
		s.tdb.Close()
		return nil, fmt.Errorf("store: read %s: %w", TentativePath(path), err)
	}
	// Drop what the committed layer caught up with while the store was closed.
	s.queueDrops(nil, true)
	s.merging.Add(1)
	go s.groupCommit()
	return s, nil
}

// moveOldTentative moves a tentative layer kept in the committed layer's file (as earlier
// versions did) into its own file, durably, before the old bucket is deleted.
func (s *Store) moveOldTentative(tx *bolt.Tx) error {
	old := tx.Bucket(bucketTentative)
	if old == nil {
		return nil
	}
	err := s.tdb.Update(func(ttx *bolt.Tx) error {
		b := ttx.Bucket(bucketTentative)
		return old.ForEach(func(k, v []byte) error {
			if b.Get(k) != nil {
				return nil
			}
			return b.Put(k, v)
		})
	})
	if err != nil {
		return fmt.Errorf("moving the tentative layer to its own file: %w", err)
	}
	return tx.DeleteBucket(bucketTentative)
}

// Close stops the group committer, syncs the committed layer, marks it clean and closes both
// files. The store must not be used afterwards; calling Close again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.merging.Wait()
		err := s.db.Sync()
		if cerr := s.db.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = writeMark(s.path, mark{boot: s.boot, clean: true})
		}
		if cerr := s.tdb.Close(); err == nil {
			err = cerr
		}
		s.closeErr = err
	})
	return s.closeErr
}

// Path is the committed layer's file's path.
func (s *Store) Path() string { return s.path }

func readApplied(root *bolt.Bucket) uint64 {
	raw := root.Bucket(bucketMeta).Get(keyApplied)
	if len(raw) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(raw)
}

// AppliedIndex is the index of the last log entry the committed layer holds.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

// AppliedChanged returns a channel closed the next time the applied index moves. Waiters take the
// channel, re-check their condition, then wait on it.
func (s *Store) AppliedChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Store) setApplied(index uint64) {
	s.applied.Store(index)
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Get returns the committed record of key, tombstones included; ok is false when the key has
// never been written (or its tombstone was purged).
func (s *Store) Get(key string) (v consistency.Value, ok bool, err error) {
	r, found, gen := s.cache.lookup(key)
	if found {
		return r.v, r.ok, nil
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketCommitted).Bucket(bucketKV).Get([]byte(key))
		if raw == nil {
			return nil
		}
		ok = true
		v, err = decodeRecord(raw)
		return err
	})
	if err == nil {
		s.cache.store(key, cachedRecord{v: v, ok: ok}, gen)
	}
	return v, ok, err
}

// CommittedVersions returns, for each of keys, the version of its committed record (zero when
// it has none), with the applied index and the purge horizon of that same state, read in one
// transaction: every node that has applied that index holds those versions or newer ones.
// AppliedIndex read after Get could lag the state Get saw (the index moves after the
// transaction commits).
func (s *Store) CommittedVersions(keys []string) (versions []consistency.Version, applied uint64, horizon consistency.Version, err error) {
	versions = make([]consistency.Version, len(keys))
	err = s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketCommitted)
		applied = readApplied(root)
		if horizon, err = readHorizon(root.Bucket(bucketMeta)); err != nil {
			return err
		}
		kv := root.Bucket(bucketKV)
		for i, key := range keys {
			raw := kv.Get([]byte(key))
			if raw == nil {
				continue
			}
			v, err := decodeRecord(raw)
			if err != nil {
				return err
			}
			versions[i] = v.Version
		}
		return nil
	})
	return versions, applied, horizon, err
}

// Item is a key with its committed record.
type Item struct {
	Key   string
	Value consistency.Value
}

// ListRange names the keys one List reads and how much of them it may return.
type ListRange struct {
	// Prefix: only keys that start with it ("" for every key).
	Prefix string
	// After: only keys strictly greater than it, so that a list can go on from the last key an
	// earlier one returned ("" for the first key: keys are never empty).
	After string
	// Limit: at most this many items (<= 0: no limit).
	Limit int
	// MaxBytes: stop before an item that would take the items' keys and values past this many
	// bytes (<= 0: no limit). The first item is always returned, whatever its size, so that a
	// list always moves on.
	MaxBytes int
	// MaxScan: stop after reading this many records, tombstones included (<= 0: no limit).
	// Tombstones count against no other limit, so without it one list could read every
	// tombstone of a prefix, however many deleted keys wait for purging (a member away
	// holds purging back for as long as it stays away), in one read transaction.
	MaxScan int
}

// List returns the live (non-tombstone) keys of r in key order, as many as r's limits allow;
// more reports whether keys of r were left out, and next is then the key to go on after (as
// r.After): the last item's, or, when r.MaxScan cut the list, the last tombstone's read after
// it (the list may then hold no item, and only tombstones may be left). It reads one
// transaction, and applied is the applied index of the state listed, read in that transaction
// (AppliedIndex, read before or after, can lag it: the index moves after the transaction
// commits). Tombstones count against r.MaxScan only.
func (s *Store) List(r ListRange) (items []Item, more bool, next string, applied uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		applied = readApplied(tx.Bucket(bucketCommitted))
		c := tx.Bucket(bucketCommitted).Bucket(bucketKV).Cursor()
		p, after := []byte(r.Prefix), []byte(r.After)
		// Start at the later of prefix and after: keys below prefix do not have it, and keys
		// up to after are excluded (after itself is skipped below).
		start := p
		if bytes.Compare(after, p) > 0 {
			start = after
		}
		k, raw := c.Seek(start)
		if k != nil && bytes.Equal(k, after) {
			k, raw = c.Next()
		}
		size, scanned := 0, 0
		var last []byte // the key of the last record read
		for ; k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
			if r.MaxScan > 0 && scanned == r.MaxScan {
				more, next = true, string(last)
				return nil
			}
			scanned++
			v, err := decodeRecord(raw)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			if v.Tombstone {
				last = k
				continue
			}
			size += len(k) + len(v.Data)
			if r.Limit > 0 && len(items) == r.Limit || r.MaxBytes > 0 && len(items) > 0 && size > r.MaxBytes {
				more, next = true, items[len(items)-1].Key
				return nil
			}
			items = append(items, Item{Key: string(k), Value: v})
			last = k
		}
		return nil
	})
	return items, more, next, applied, err
}

// Members returns the recorded cluster members by id.
func (s *Store) Members() (map[string]replication.Member, error) {
	members := map[string]replication.Member{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCommitted).Bucket(bucketMembers).ForEach(func(k, raw []byte) error {
			var m replication.Member
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("member %q: %w", k, err)
			}
			members[string(k)] = m
			return nil
		})
	})
	return members, err
}

// Tx is one committed-layer write transaction, open only inside Apply's callback.
type Tx struct {
	root, kv *bolt.Bucket
	// The other sub-buckets, opened on first use (Tx.sub): most transactions touch only kv
	// and meta, and opening a bucket costs a seek and an allocation.
	membersB, metaB, watermarksB, tombstonesB *bolt.Bucket
	// tentative is a read-only view of the tentative layer (nil: nothing to drop); entries the
	// transaction supersedes are collected in drops and deleted by the group committer after
	// the transaction commits.
	tentative      *bolt.Bucket
	drops          []replication.Write
	prune          bool
	membersChanged bool
	// touched lists the keys whose committed record the transaction changed, for the read cache.
	touched []string
}

// Get returns key's committed record as the transaction sees it.
func (t *Tx) Get(key string) (consistency.Value, bool, error) {
	raw := t.kv.Get([]byte(key))
	if raw == nil {
		return consistency.Value{}, false, nil
	}
	v, err := decodeRecord(raw)
	return v, true, err
}

// Put stores key's committed record, keeps the tombstone index in step, and drops the key's
// tentative entry if the committed layer now holds a version at least as new.
func (t *Tx) Put(key string, v consistency.Value) error {
	k := []byte(key)
	t.touched = append(t.touched, key)
	if err := t.kv.Put(k, encodeRecord(v)); err != nil {
		return err
	}
	var err error
	if v.Tombstone {
		err = t.tombstones().Put(k, replication.AppendVersion(nil, v.Version))
	} else {
		err = t.tombstones().Delete(k)
	}
	if err != nil {
		return err
	}
	return t.DropTentative(key, v.Version)
}

// DropTentative deletes key's tentative entry if its version is at or below upTo, once the
// transaction has committed (until then, and until the group committer has run, readers that
// compare both layers see the committed version as the newer one).
func (t *Tx) DropTentative(key string, upTo consistency.Version) error {
	if t.tentative == nil {
		return nil
	}
	doomed, err := tentativeAtMost(t.tentative, key, upTo)
	if doomed {
		t.drops = append(t.drops, replication.Write{Key: key, Value: consistency.Value{Version: upTo}})
	}
	return err
}

// PutMember records m, replacing the entry with the same id.
func (t *Tx) PutMember(m replication.Member) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	t.membersChanged = true
	if err := t.meta().Delete(removedKey(m.ID)); err != nil {
		return err
	}
	return t.members().Put([]byte(m.ID), raw)
}

// RemoveMember takes id out of the members table, forgets its watermark (so purging no longer
// waits for it) and marks it removed. Removing an absent id only marks it.
func (t *Tx) RemoveMember(id string) error {
	t.membersChanged = true
	if err := t.members().Delete([]byte(id)); err != nil {
		return err
	}
	if err := t.watermarks().Delete([]byte(id)); err != nil {
		return err
	}
	return t.meta().Put(removedKey(id), []byte{1})
}

// IsRemoved reports whether id was removed and has not registered since.
func (t *Tx) IsRemoved(id string) bool { return t.meta().Get(removedKey(id)) != nil }

func removedKey(id string) []byte { return append(append([]byte(nil), prefixRemoved...), id...) }

// Removed returns the ids of the members removed from the cluster that have not registered
// since. It moves with MembersGeneration.
func (s *Store) Removed() (map[string]bool, error) {
	removed := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCommitted).Bucket(bucketMeta).Cursor()
		for k, _ := c.Seek(prefixRemoved); k != nil && bytes.HasPrefix(k, prefixRemoved); k, _ = c.Next() {
			removed[string(k[len(prefixRemoved):])] = true
		}
		return nil
	})
	return removed, err
}

// MembersGeneration changes whenever the committed members table does (after the transaction
// that changed it commits). Read it before Members to cache the table safely.
func (s *Store) MembersGeneration() uint64 { return s.membersGen.Load() }

// Apply runs fn in one write transaction and records lastIndex as the applied index in the same
// transaction: either the whole batch and its index are durable, or neither is. If fn fails,
// nothing is written and the error is returned.
//
// The transaction is not fsynced: the committed layer is rebuilt from Raft after a machine crash
// (see durability.go), so this costs no disk flush on the write's path.
func (s *Store) Apply(lastIndex uint64, fn func(*Tx) error) error {
	s.layerMu.Lock()
	defer s.layerMu.Unlock()
	view, err := s.tdb.Begin(false)
	if err != nil {
		return fmt.Errorf("store: tentative view: %w", err)
	}
	defer view.Rollback()
	var tx *Tx
	err = s.db.Update(func(btx *bolt.Tx) error {
		tx = newTx(btx, view)
		if err := fn(tx); err != nil {
			return err
		}
		return tx.meta().Put(keyApplied, binary.BigEndian.AppendUint64(nil, lastIndex))
	})
	// Before the applied index moves, and on failure too (harmless, and safe whatever bbolt left).
	if tx != nil {
		s.cache.invalidate(tx.touched)
	}
	if err != nil {
		return err
	}
	view.Rollback()
	if tx.membersChanged {
		s.membersGen.Add(1)
	}
	s.setApplied(lastIndex)
	s.queueDrops(tx.drops, tx.prune)
	return nil
}

// Snapshot is a point-in-time view of the committed layer. It holds a read transaction until
// Release; WriteTo may run in another goroutine than the one that took it, concurrently with Apply.
type Snapshot struct {
	tx      *bolt.Tx
	applied uint64
	// covers is the log index the snapshot reflects, if above applied (see CoverLogIndex).
	covers uint64
	once   sync.Once
}

// Snapshot opens a read transaction over the committed layer. It is cheap; the copying happens
// in WriteTo.
func (s *Store) Snapshot() (*Snapshot, error) {
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot: %w", err)
	}
	return &Snapshot{tx: tx, applied: readApplied(tx.Bucket(bucketCommitted))}, nil
}

// AppliedIndex is the applied index the snapshot holds.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// CoverLogIndex records that the snapshot reflects every log entry up to index: the caller
// took it once every entry up to there had been handed to Apply or skipped as one Apply never
// sees (a no-op, a barrier). WriteTo then writes index as the applied index when it is the
// higher, so that the committed layer restored from the snapshot says it holds those entries:
// the node that installs it has none of them in its log, and could not tell otherwise that
// there is nothing in them left to apply. Call it before WriteTo.
func (sn *Snapshot) CoverLogIndex(index uint64) { sn.covers = index }

// WriteTo streams the committed layer: the magic line, then per sub-bucket its name and its
// key/value pairs, each length-prefixed, a zero-length key ending a bucket and a zero-length name
// ending the stream.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	cw := &countWriter{w: bw}
	writeChunk := func(p []byte) error {
		var lenBuf [binary.MaxVarintLen64]byte
		n := binary.PutUvarint(lenBuf[:], uint64(len(p)))
		if _, err := cw.Write(lenBuf[:n]); err != nil {
			return err
		}
		_, err := cw.Write(p)
		return err
	}
	if _, err := io.WriteString(cw, snapshotMagic); err != nil {
		return cw.n, err
	}
	root := sn.tx.Bucket(bucketCommitted)
	// The applied index goes out in its place among the meta keys (they go out in order), as
	// the higher of the state's and the log index the snapshot covers: also when the state has
	// none yet (nothing applied, only entries Apply never sees).
	applied := max(sn.applied, sn.covers)
	appliedWritten := false
	writeApplied := func() error {
		appliedWritten = true
		if applied == 0 {
			return nil
		}
		if err := writeChunk(keyApplied); err != nil {
			return err
		}
		return writeChunk(binary.BigEndian.AppendUint64(nil, applied))
	}
	for _, name := range committedSubs {
		if err := writeChunk(name); err != nil {
			return cw.n, err
		}
		isMeta := bytes.Equal(name, bucketMeta)
		err := root.Bucket(name).ForEach(func(k, v []byte) error {
			if isMeta && !appliedWritten {
				if c := bytes.Compare(k, keyApplied); c >= 0 {
					if err := writeApplied(); err != nil || c == 0 {
						return err
					}
				}
			}
			if err := writeChunk(k); err != nil {
				return err
			}
			return writeChunk(v)
		})
		if err == nil && isMeta && !appliedWritten {
			err = writeApplied()
		}
		if err != nil {
			return cw.n, err
		}
		if err := writeChunk(nil); err != nil {
			return cw.n, err
		}
	}
	if err := writeChunk(nil); err != nil {
		return cw.n, err
	}
	return cw.n, bw.Flush()
}

// Release ends the read transaction. Safe to call more than once.
func (sn *Snapshot) Release() {
	sn.once.Do(func() { sn.tx.Rollback() })
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the committed layer with the stream WriteTo produced. It builds the new layer
// under bucketRestoring in transactions of about restoreTxBytes each, then swaps it in with one
// last transaction: on any error (or a crash) the old state stays whole, and the half-built one
// is dropped. One transaction for the whole stream held every value of the state in memory at
// once, and again as pages at commit: restoring 512 MiB of 1 MiB values peaked at 1.5 GiB of
// heap, so a follower sent the snapshot of a state that size could not install it in a 1 GiB
// container (and, restarted, got it again). Tentative entries the restored state has caught up
// with are dropped afterwards by the group committer.
func (s *Store) Restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return fmt.Errorf("store: restore: not a dialkv snapshot (%q): %v", magic, err)
	}
	readChunk := func() ([]byte, error) {
		n, err := binary.ReadUvarint(br)
		if err == nil && n > 1<<31 {
			err = fmt.Errorf("%w: a chunk of %d bytes", ErrCorrupt, n)
		}
		var p []byte
		if err == nil {
			p = make([]byte, n)
			_, err = io.ReadFull(br, p)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			// Only the end marker may end the stream.
			err = fmt.Errorf("%w: the snapshot is cut short", ErrCorrupt)
		}
		return p, err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := dropRestoring(tx); err != nil {
			return err
		}
		staging, err := tx.CreateBucket(bucketRestoring)
		if err != nil {
			return err
		}
		root, err := staging.CreateBucket(bucketCommitted)
		if err != nil {
			return err
		}
		for _, name := range committedSubs {
			if _, err := root.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	// The stream is read across transactions: name is the sub-bucket being filled (nil between
	// sub-buckets), done is set by the stream's end.
	var name []byte
	done := false
	for err == nil && !done {
		err = s.db.Update(func(tx *bolt.Tx) error {
			root := tx.Bucket(bucketRestoring).Bucket(bucketCommitted)
			var b *bolt.Bucket
			if name != nil {
				b = root.Bucket(name)
				b.FillPercent = 0.9 // keys arrive sorted, bbolt's best case for filling pages
			}
			for size := 0; size < s.restoreTxBytes; {
				if name == nil {
					next, err := readChunk()
					if err != nil {
						return fmt.Errorf("bucket name: %w", err)
					}
					if len(next) == 0 {
						done = true
						return nil
					}
					if b = root.Bucket(next); b == nil {
						return fmt.Errorf("unknown bucket %q", next)
					}
					b.FillPercent = 0.9
					name = next
					continue
				}
				k, err := readChunk()
				if err != nil {
					return fmt.Errorf("bucket %s: key: %w", name, err)
				}
				if len(k) == 0 {
					name = nil
					continue
				}
				v, err := readChunk()
				if err != nil {
					return fmt.Errorf("bucket %s: value: %w", name, err)
				}
				if err := checkSnapshotPair(name, k, v); err != nil {
					return fmt.Errorf("bucket %s, key %q: %w (%v)", name, k, ErrCorrupt, err)
				}
				if err := b.Put(k, v); err != nil {
					return err
				}
				size += len(k) + len(v)
			}
			return nil
		})
		if err == nil && !done && s.restoreStaged != nil {
			s.restoreStaged()
		}
	}
	var applied uint64
	if err == nil {
		err = s.db.Update(func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketCommitted); err != nil {
				return err
			}
			if err := tx.MoveBucket(bucketCommitted, tx.Bucket(bucketRestoring), nil); err != nil {
				return err
			}
			applied = readApplied(tx.Bucket(bucketCommitted))
			return tx.DeleteBucket(bucketRestoring)
		})
	}
	if err != nil {
		s.db.Update(dropRestoring) // best effort: Open drops it too
		return fmt.Errorf("store: restore: %w", err)
	}
	s.cache.reset()
	s.membersGen.Add(1)
	s.setApplied(applied)
	s.queueDrops(nil, true)
	return nil
}

// checkSnapshotPair refuses a key and value of bucket in a snapshot stream that the committed
// layer could not read back: a record, version, member or applied index that does not decode.
// Restoring it would take the snapshot whole, and the node would stop (or fail reads) on it
// later, far from its cause. Meta keys it does not know pass: a newer binary may write more.
func checkSnapshotPair(bucket, k, v []byte) error {
	var err error
	switch {
	case bytes.Equal(bucket, bucketKV):
		_, err = recordVersion(v)
	case bytes.Equal(bucket, bucketTombstones), bytes.Equal(bucket, bucketWatermarks):
		_, err = decodeExactVersion(v)
	case bytes.Equal(bucket, bucketMembers):
		var m replication.Member
		err = json.Unmarshal(v, &m)
	case bytes.Equal(bucket, bucketMeta) && bytes.Equal(k, keyApplied):
		if len(v) != 8 {
			err = fmt.Errorf("an applied index of %d bytes", len(v))
		}
	case bytes.Equal(bucket, bucketMeta) && (bytes.Equal(k, keyPurgeHorizon) || bytes.Equal(k, keyNewest)):
		_, err = decodeExactVersion(v)
	}
	return err
}

// restoreTxBytes is how much of a snapshot Restore writes per transaction (see Restore).
const restoreTxBytes = 16 << 20

// dropRestoring deletes a half-built committed layer left by a Restore that failed or was cut
// short by a crash.
func dropRestoring(tx *bolt.Tx) error {
	if tx.Bucket(bucketRestoring) == nil {
		return nil
	}
	return tx.DeleteBucket(bucketRestoring)
}
