package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/plant"
	"github.com/dialkv/dialkv/replication"
)

// newTx wraps a transaction on the committed layer; tentative (may be nil) is a transaction on
// the tentative layer's file.
func newTx(btx, tentative *bolt.Tx) *Tx {
	root := btx.Bucket(bucketCommitted)
	t := &Tx{root: root, kv: root.Bucket(bucketKV)}
	if tentative != nil {
		t.tentative = tentative.Bucket(bucketTentative)
	}
	return t
}

// sub is the committed layer's sub-bucket name, opened into *b on first use.
func (t *Tx) sub(b **bolt.Bucket, name []byte) *bolt.Bucket {
	if *b == nil {
		*b = t.root.Bucket(name)
	}
	return *b
}

func (t *Tx) members() *bolt.Bucket    { return t.sub(&t.membersB, bucketMembers) }
func (t *Tx) meta() *bolt.Bucket       { return t.sub(&t.metaB, bucketMeta) }
func (t *Tx) watermarks() *bolt.Bucket { return t.sub(&t.watermarksB, bucketWatermarks) }
func (t *Tx) tombstones() *bolt.Bucket { return t.sub(&t.tombstonesB, bucketTombstones) }

// SetWatermark records member's report: it holds no uncommitted eventual write older than v.
// Reports only move forward.
func (t *Tx) SetWatermark(member string, v consistency.Version) error {
	if raw := t.watermarks().Get([]byte(member)); raw != nil {
		if old, _, err := replication.DecodeVersion(raw); err == nil && !v.Newer(old) {
			return nil
		}
	}
	return t.watermarks().Put([]byte(member), replication.AppendVersion(nil, v))
}

// PurgeHorizon is the version below which tombstones have been purged, and below which an
// eventual write can no longer be told apart from one a purged delete superseded: such writes
// are refused. A stored horizon that does not decode is ErrCorrupt: taken as zero, it would let
// this replica take eventual writes the others refuse (deleted keys coming back on it alone).
func (t *Tx) PurgeHorizon() (consistency.Version, error) { return readHorizon(t.meta()) }

// readHorizon reads the purge horizon from the meta bucket of the committed layer at path.
func readHorizon(meta *bolt.Bucket) (consistency.Version, error) {
	return readMetaVersion(meta, keyPurgeHorizon)
}

// NoteVersion records v as a version the applied entries carried, if it is newer than every
// one recorded so far (see Store.NewestVersion). It must be called with versions that follow
// from the log alone, like everything else in the committed layer.
func (t *Tx) NoteVersion(v consistency.Version) error {
	newest, err := readMetaVersion(t.meta(), keyNewest)
	if err != nil || !v.Newer(newest) {
		return err
	}
	return t.meta().Put(keyNewest, replication.AppendVersion(nil, v))
}

// readMetaVersion reads the version stored under key in the meta bucket of the committed layer
// at path (zero when there is none). Anything but exactly one encoded version is ErrCorrupt.
func readMetaVersion(meta *bolt.Bucket, key []byte) (consistency.Version, error) {
	raw := meta.Get(key)
	if raw == nil {
		return consistency.Version{}, nil
	}
	v, err := decodeExactVersion(raw)
	if err != nil {
		return consistency.Version{}, corruptCommitted(meta, bucketMeta, key, err)
	}
	return v, nil
}

// decodeExactVersion decodes raw as one encoded version, with nothing after it.
func decodeExactVersion(raw []byte) (consistency.Version, error) {
	v, rest, err := replication.DecodeVersion(raw)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the version", len(rest))
	}
	return v, err
}

// corruptCommitted is ErrCorrupt for the value of key in b, the committed layer's bucket named
// bucket. That layer holds nothing the Raft snapshot and log cannot rebuild, so the way out is to
// let them rebuild it.
func corruptCommitted(b *bolt.Bucket, bucket, key []byte, err error) error {
	path := b.Tx().DB().Path()
	return fmt.Errorf("%s: bucket %s/%s, key %q: %w (%v): %s", path, bucketCommitted, bucket, key, ErrCorrupt, err, rebuildAdvice(path))
}

// rebuildAdvice is what to do about a damaged committed layer at path.
func rebuildAdvice(path string) string {
	return "stop the node, move " + path + " aside and start it again: the committed layer is rebuilt from the Raft snapshot and log"
}

// PurgeReport says what a purge did or why it could not.
type PurgeReport struct {
	Purged  int
	Horizon consistency.Version
	// BlockedBy lists the members that have not reported a watermark: purging waits for them.
	BlockedBy []string
}

// Purge removes committed tombstones older than every member's watermark, and raises the purge
// horizon to that watermark. It is deterministic: it reads only committed state.
func (t *Tx) Purge() (PurgeReport, error) {
	if plant.PurgeUnacknowledged {
		return t.purgeUnacknowledged()
	}
	var rep PurgeReport
	var horizon consistency.Version
	first := true
	err := t.members().ForEach(func(id, _ []byte) error {
		raw := t.watermarks().Get(id)
		if raw == nil {
			rep.BlockedBy = append(rep.BlockedBy, string(id))
			return nil
		}
		w, err := decodeExactVersion(raw)
		if err != nil {
			return corruptCommitted(t.watermarks(), bucketWatermarks, id, err)
		}
		if first || horizon.Newer(w) {
			horizon, first = w, false
		}
		return nil
	})
	if err != nil || len(rep.BlockedBy) > 0 || first {
		return rep, err
	}
	stored, err := t.PurgeHorizon()
	if err != nil {
		return rep, err
	}
	if !horizon.Newer(stored) {
		rep.Horizon = stored
		return rep, nil
	}
	purged, err := t.dropTombstones(horizon.Newer)
	if err != nil {
		return rep, err
	}
	rep.Purged, rep.Horizon = purged, horizon
	// Tentative entries below the new horizon can no longer be committed: drop them too.
	t.prune = true
	return rep, t.meta().Put(keyPurgeHorizon, replication.AppendVersion(nil, horizon))
}

// dropTombstones removes the committed tombstones whose version doomed picks, and reports how
// many.
func (t *Tx) dropTombstones(doomed func(consistency.Version) bool) (int, error) {
	var keys [][]byte
	err := t.tombstones().ForEach(func(k, raw []byte) error {
		v, err := decodeExactVersion(raw)
		if err != nil {
			return corruptCommitted(t.tombstones(), bucketTombstones, k, err)
		}
		if doomed(v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		t.touched = append(t.touched, string(k))
		if err := t.kv.Delete(k); err != nil {
			return 0, err
		}
		if err := t.tombstones().Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// purgeUnacknowledged is the planted bug purge-unacknowledged (internal/plant): every committed
// tombstone goes at once, as a timer would purge it, without waiting for the members'
// watermarks and without raising the purge horizon, so an older eventual write committed later
// brings its key back (the Cassandra missed-repair story).
func (t *Tx) purgeUnacknowledged() (PurgeReport, error) {
	purged, err := t.dropTombstones(func(consistency.Version) bool { return true })
	if err != nil {
		return PurgeReport{}, err
	}
	horizon, err := t.PurgeHorizon()
	return PurgeReport{Purged: purged, Horizon: horizon}, err
}

// pruneTentative drops every tentative entry (in the writable t.tentative) the committed layer
// has caught up with or that is below the purge horizon (after a snapshot restore, say).
func pruneTentative(t *Tx) (int, error) {
	horizon, err := t.PurgeHorizon()
	if err != nil {
		return 0, err
	}
	var doomed [][]byte
	err = t.tentative.ForEach(func(k, raw []byte) error {
		tv, err := decodeRecord(raw)
		if err != nil {
			return err
		}
		if horizon.Newer(tv.Version) {
			doomed = append(doomed, bytes.Clone(k))
			return nil
		}
		cv, ok, err := versionIn(t.kv, k)
		if ok && cv.Compare(tv.Version) >= 0 {
			doomed = append(doomed, bytes.Clone(k))
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, k := range doomed {
		if err := t.tentative.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

type mergeRequest struct {
	ws   []replication.Write
	done chan mergeResult
}

type mergeResult struct {
	stored []replication.Write
	err    error
}

// MergeTentative durably stores each write that is newer than both the committed and the
// tentative version of its key (and not below the purge horizon), and returns the ones it
// stored. It returns only after an fsync: an eventual write is acknowledged once this returns.
// Concurrent callers share one transaction and one fsync (group commit).
func (s *Store) MergeTentative(ws []replication.Write) ([]replication.Write, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	req := mergeRequest{ws: ws, done: make(chan mergeResult, 1)}
	select {
	case s.merges <- req:
	case <-s.stop:
		return nil, ErrClosed
	}
	select {
	case r := <-req.done:
		return r.stored, r.err
	case <-s.stop:
		// Closing: the committer answers what it already took, once its commit is over (the
		// write may be durable by then); the rest were never written.
		s.merging.Wait()
		select {
		case r := <-req.done:
			return r.stored, r.err
		default:
			return nil, ErrClosed
		}
	}
}

// queueDrops hands the group committer tentative entries a committed transaction superseded
// (and, with prune, a request to check the whole tentative layer).
func (s *Store) queueDrops(drops []replication.Write, prune bool) {
	if len(drops) == 0 && !prune {
		return
	}
	s.dropMu.Lock()
	s.drops = append(s.drops, drops...)
	s.prune = s.prune || prune
	s.dropsSeen.Add(1)
	s.dropMu.Unlock()
	select {
	case s.dropWake <- struct{}{}:
	default:
	}
}

// groupCommit runs merge requests in batches: whatever is waiting when a commit starts shares
// it, with no timer (bbolt's db.Batch waits out a 10 ms timer under load). The same commits
// delete the tentative entries committed transactions superseded.
func (s *Store) groupCommit() {
	defer s.merging.Done()
	for {
		var batch []mergeRequest
		select {
		case <-s.stop:
			return
		case r := <-s.merges:
			batch = append(batch, r)
		case <-s.dropWake:
		}
	drain:
		for len(batch) < 4096 {
			select {
			case r := <-s.merges:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		results, err := s.commitTentative(batch)
		for i, r := range batch {
			if err != nil {
				results[i] = mergeResult{err: fmt.Errorf("store: tentative write: %w", err)}
			}
			r.done <- results[i]
		}
	}
}

// commitTentative is one group commit: the merges of batch, checked against a view of the
// committed layer, then the queued drops and prune. They are collected before the view is
// opened: a commit queues its drops and prune only after it has committed, so the view holds
// every commit whose requests this one runs. (Drops carry their own versions, but a prune
// judges the whole layer by the view: opened first, the view could predate the purge or
// restore that asked for the prune, which would then be used up on the state before it.)
//
// The view can be older than a commit of the same write by the time the merge is durable, and
// that commit may not have seen the entry either (its view of the tentative layer predates this
// commit): nobody would drop it. So once durable, the stored writes are checked again under
// layerMu against the committed layer as it is then. A commit that took its tentative view
// before this commit holds layerMu until it has committed, so the check sees it.
func (s *Store) commitTentative(batch []mergeRequest) ([]mergeResult, error) {
	results := make([]mergeResult, len(batch))
	s.dropMu.Lock()
	drops, prune, seen := s.drops, s.prune, s.dropsSeen.Load()
	s.drops, s.prune = nil, false
	s.dropMu.Unlock()
	view, err := s.db.Begin(false)
	if err != nil {
		s.queueDrops(drops, prune)
		return results, err
	}
	defer view.Rollback()
	if s.viewTaken != nil {
		s.viewTaken(len(batch))
	}
	var empty bool
	err = s.tdb.Update(func(ttx *bolt.Tx) error {
		t := newTx(view, ttx)
		horizon, err := t.PurgeHorizon()
		if err != nil {
			return err
		}
		changed := false
		var newest consistency.Version
		for i, r := range batch {
			for _, w := range r.ws {
				ok, err := mergeOne(t, horizon, w)
				if err != nil {
					return err
				}
				if ok {
					results[i].stored = append(results[i].stored, w)
					changed = true
					if s.nodeID != "" && w.Origin() == s.nodeID {
						newest = consistency.Max(newest, w.Value.Version)
					}
				}
			}
		}
		if !newest.IsZero() {
			if err := raiseClockFloor(ttx, newest); err != nil {
				return err
			}
		}
		for _, d := range drops {
			dropped, err := dropIfAtMost(t.tentative, d.Key, d.Value.Version)
			if err != nil {
				return err
			}
			changed = changed || dropped
		}
		if prune {
			pruned, err := pruneTentative(t)
			if err != nil {
				return err
			}
			changed = changed || pruned > 0
		}
		if !changed {
			// Gossip delivers most writes more than once: a commit that stores nothing would
			// still cost two fsyncs (bbolt writes a new meta page).
			return errNothingToCommit
		}
		first, _ := t.tentative.Cursor().First()
		empty = first == nil
		return nil
	})
	if errors.Is(err, errNothingToCommit) {
		err = nil
	} else if err == nil {
		s.tentativeEmpty.Store(empty)
	}
	if err != nil {
		// Put the drops back for the next round; the merges fail.
		s.queueDrops(drops, prune)
		return results, err
	}
	s.dropsDone.Store(seen)
	view.Rollback()
	s.recheckStored(results)
	return results, nil
}

// recheckStored queues a drop for every just-stored write the committed layer has caught up
// with in the meantime (see commitTentative). The writes are durable whatever happens here: if
// the committed layer cannot be read, a full prune is queued instead.
func (s *Store) recheckStored(results []mergeResult) {
	var superseded []replication.Write
	s.layerMu.Lock()
	err := s.db.View(func(btx *bolt.Tx) error {
		kv := btx.Bucket(bucketCommitted).Bucket(bucketKV)
		for _, r := range results {
			for _, w := range r.stored {
				cur, ok, err := versionIn(kv, []byte(w.Key))
				if err != nil {
					return err
				}
				if ok && cur.Compare(w.Value.Version) >= 0 {
					superseded = append(superseded, replication.Write{Key: w.Key, Value: consistency.Value{Version: cur}})
				}
			}
		}
		return nil
	})
	s.layerMu.Unlock()
	s.queueDrops(superseded, err != nil)
}

// errNothingToCommit rolls back a group commit that changed nothing.
var errNothingToCommit = errors.New("store: nothing to commit")

func dropIfAtMost(b *bolt.Bucket, key string, upTo consistency.Version) (bool, error) {
	doomed, err := tentativeAtMost(b, key, upTo)
	if err != nil || !doomed {
		return false, err
	}
	return true, b.Delete([]byte(key))
}

// tentativeAtMost reports whether b holds a tentative entry for key at or below upTo.
func tentativeAtMost(b *bolt.Bucket, key string, upTo consistency.Version) (bool, error) {
	v, ok, err := versionIn(b, []byte(key))
	return ok && v.Compare(upTo) <= 0, err
}

// versionIn returns the version of key's record in b (ok false when b has none).
func versionIn(b *bolt.Bucket, key []byte) (v consistency.Version, ok bool, err error) {
	raw := b.Get(key)
	if raw == nil {
		return v, false, nil
	}
	v, err = recordVersion(raw)
	if err != nil {
		return v, false, err
	}
	return v, true, nil
}

// mergeOne stores w in the transaction's tentative layer if it is the newest of its key. A write
// no layer can hold (an empty key, or one over MaxKeySize: from a peer, never from this node's
// API) is dropped: failing the transaction would fail every write merged with it. So is a write
// whose version no clock stamps (consistency.Version.Stamped): the leader refuses a committer
// batch that holds one, and the committer would send that batch again and again.
func mergeOne(t *Tx, horizon consistency.Version, w replication.Write) (bool, error) {
	if CheckKey(w.Key) != nil || !w.Value.Version.Stamped() || horizon.Newer(w.Value.Version) {
		return false, nil
	}
	k := []byte(w.Key)
	for _, b := range []*bolt.Bucket{t.kv, t.tentative} {
		cur, ok, err := versionIn(b, k)
		if err != nil {
			return false, err
		}
		if ok && !w.Value.Version.Newer(cur) {
			return false, nil
		}
	}
	return true, t.tentative.Put(k, encodeRecord(w.Value))
}

// Tentative returns key's tentative entry, if any. An entry below the purge horizon is not
// returned: it can never be committed, and the delete that superseded it may be purged already
// (then the committed layer holds nothing of the key), while the group committer drops such
// entries only after the purge has committed. The horizon is read after the entry, so a purge
// committed before the call began is seen.
func (s *Store) Tentative(key string) (v consistency.Value, ok bool, err error) {
	if s.tentativeEmpty.Load() {
		return v, false, nil
	}
	err = s.tdb.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketTentative).Get([]byte(key))
		if raw == nil {
			return nil
		}
		ok = true
		v, err = decodeRecord(raw)
		return err
	})
	if err != nil || !ok {
		return v, ok, err
	}
	h, err := s.PurgeHorizon()
	if err != nil || h.Newer(v.Version) {
		return consistency.Value{}, false, err
	}
	return v, true, nil
}

// TentativeDigest returns key → version of every tentative entry whose key is in [from, to),
// to "" meaning no upper bound. It reads only the entries of that range.
func (s *Store) TentativeDigest(from, to string) (map[string]consistency.Version, error) {
	digest := map[string]consistency.Version{}
	err := s.tdb.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTentative).Cursor()
		for k, raw := c.Seek([]byte(from)); k != nil && (to == "" || string(k) < to); k, raw = c.Next() {
			if len(raw) < 1 {
				return fmt.Errorf("empty tentative record %q", k)
			}
			v, _, err := replication.DecodeVersion(raw[1:])
			if err != nil {
				return err
			}
			digest[string(k)] = v
		}
		return nil
	})
	return digest, err
}

// GetTentative returns the tentative entries of keys; keys without one are skipped.
func (s *Store) GetTentative(keys []string) ([]replication.Write, error) {
	var ws []replication.Write
	err := s.tdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTentative)
		for _, k := range keys {
			raw := b.Get([]byte(k))
			if raw == nil {
				continue
			}
			v, err := decodeRecord(raw)
			if err != nil {
				return err
			}
			ws = append(ws, replication.Write{Key: k, Value: v})
		}
		return nil
	})
	return ws, err
}

// TentativeSummary describes the tentative layer.
type TentativeSummary struct {
	Count int
	// Oldest and Newest are the oldest and the newest version held (zero when empty).
	Oldest, Newest consistency.Version
	// Left counts the entries PendingTentative's include accepted but did not return, over its
	// limit or its byte budget: zero when it returned every one.
	Left int
}

// add counts an entry of version v.
func (sum *TentativeSummary) add(v consistency.Version) {
	sum.Count++
	if sum.Oldest.IsZero() || sum.Oldest.Newer(v) {
		sum.Oldest = v
	}
	sum.Newest = consistency.Max(sum.Newest, v)
}

// SummarizeTentative counts the tentative layer and finds its oldest version (the backlog
// gauges): PendingTentative returning no entries.
func (s *Store) SummarizeTentative() (TentativeSummary, error) {
	_, sum, err := s.PendingTentative(func([]byte, consistency.Version) bool { return false }, 0, 0)
	return sum, err
}

// PendingTentative returns the tentative entries include accepts (a nil include takes all; key
// is valid only during the call), in key order, and a summary of the whole layer: at most limit
// of them, and none past the one that takes their keys and records over maxBytes (the first is
// returned whatever its size); 0 means no limit. Only the entries it returns are decoded whole;
// for the rest it reads the version alone (the committer's watermark scans and the backlog
// gauges read every entry, every second), so a backlog of large values is not read into memory
// whole to fill one batch.
func (s *Store) PendingTentative(include func(key []byte, v consistency.Version) bool, limit, maxBytes int) ([]replication.Write, TentativeSummary, error) {
	var ws []replication.Write
	var sum TentativeSummary
	if s.tentativeEmpty.Load() {
		return nil, sum, nil
	}
	size, stopped := 0, false
	err := s.tdb.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTentative).ForEach(func(k, raw []byte) error {
			version, err := recordVersion(raw)
			if err != nil {
				return err
			}
			sum.add(version)
			if include != nil && !include(k, version) {
				return nil
			}
			// Past the limit or the budget, every later entry is left too (a smaller one that
			// would still fit included): the writes returned are the first ones include accepts.
			stopped = stopped || limit > 0 && len(ws) >= limit || maxBytes > 0 && len(ws) > 0 && size+len(k)+len(raw) > maxBytes
			if stopped {
				sum.Left++
				return nil
			}
			v, err := decodeRecord(raw)
			if err != nil {
				return err
			}
			size += len(k) + len(raw)
			ws = append(ws, replication.Write{Key: string(k), Value: v})
			return nil
		})
	})
	return ws, sum, err
}

// storedFloorLead is how far above the newest version of its own node's it stores the tentative
// layer records the clock floor, so that the floor is written about ten times per second of
// clock, not with every group commit (a small put in a transaction that syncs anyway). A node
// restarted within that time stamps up to this much ahead of its wall clock at first, and a node
// restarted over and over, taking a write each time, gains at most this much per restart: kept
// small, since a clock ahead widens last-writer-wins' window over strong writes made later.
const storedFloorLead = 100 * time.Millisecond

// raiseClockFloor makes the clock floor, in the same transaction, newer than v, the newest
// version of this node's own a group commit stores. The node's clock restarts from the wall
// clock, the purge horizon and the floor. Without this, a node whose clock had followed a peer's
// running ahead would stamp its first writes after a restart below the ones it acknowledged
// before, and could give one the very version of an earlier, still uncommitted write of its own
// to the same key (replaying the log shows its clock the peer's writes again, not that one):
// last-writer-wins then keeps only one of two acknowledged writes.
func raiseClockFloor(ttx *bolt.Tx, v consistency.Version) error {
	b := ttx.Bucket(bucketLocal)
	if raw := b.Get(keyClockFloor); raw != nil {
		if floor, _, err := replication.DecodeVersion(raw); err == nil && floor.Newer(v) {
			return nil
		}
	}
	return b.Put(keyClockFloor, replication.AppendVersion(nil, consistency.Version{Wall: v.Wall + int64(storedFloorLead)}))
}

// SetClockFloor records, durably, that this node will never stamp a version below v: a watermark
// it is about to report promises exactly that, and purging trusts the promise. The clock of a
// node restarted with its wall clock behind starts above the floor (ClockFloor), so the promise
// survives the restart. A v not newer than the recorded floor changes nothing.
func (s *Store) SetClockFloor(v consistency.Version) error {
	return s.tdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLocal)
		if raw := b.Get(keyClockFloor); raw != nil {
			if old, _, err := replication.DecodeVersion(raw); err == nil && !v.Newer(old) {
				return nil
			}
		}
		return b.Put(keyClockFloor, replication.AppendVersion(nil, v))
	})
}

// ClockFloor is the newest floor SetClockFloor recorded; zero when none.
func (s *Store) ClockFloor() (v consistency.Version, err error) {
	err = s.tdb.View(func(tx *bolt.Tx) error {
		if raw := tx.Bucket(bucketLocal).Get(keyClockFloor); raw != nil {
			if v, err = decodeExactVersion(raw); err != nil {
				// The floor is what keeps this node's clock above versions it acknowledged
				// before a restart: without it, it could stamp below them.
				return fmt.Errorf("%s: bucket %s, key %q: %w (%v): this node cannot tell how far its clock must stay ahead; take it out (kvctl member remove) and add it back empty",
					s.tdb.Path(), bucketLocal, keyClockFloor, ErrCorrupt, err)
			}
		}
		return nil
	})
	return v, err
}

// PurgeHorizon is the committed purge horizon (see Tx.PurgeHorizon).
func (s *Store) PurgeHorizon() (h consistency.Version, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		h, err = readHorizon(tx.Bucket(bucketCommitted).Bucket(bucketMeta))
		return err
	})
	return h, err
}

// NewestVersion is the newest version the committed layer's applied entries carried (zero when
// none was recorded: a layer written before it was). A node's clock had observed it when it
// applied them; the log is not replayed into a layer that holds it already, so the clock must
// observe it again on reopening (and on a restore), or the node would stamp its next writes
// below versions it serves.
func (s *Store) NewestVersion() (v consistency.Version, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v, err = readMetaVersion(tx.Bucket(bucketCommitted).Bucket(bucketMeta), keyNewest)
		return err
	})
	return v, err
}

// TombstonesPending says whether any committed tombstone waits for purging. Unlike
// PurgeStatus it reads one key, not the whole index.
func (s *Store) TombstonesPending() (pending bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketCommitted).Bucket(bucketTombstones).Cursor().First()
		pending = k != nil
		return nil
	})
	return pending, err
}

// PurgeStatus says how many tombstones wait for purging and, per member, the last watermark it
// reported (zero: none yet, and purging waits for it).
func (s *Store) PurgeStatus() (pending int, reports map[string]consistency.Version, err error) {
	reports = map[string]consistency.Version{}
	err = s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketCommitted)
		pending = root.Bucket(bucketTombstones).Stats().KeyN
		wm := root.Bucket(bucketWatermarks)
		return root.Bucket(bucketMembers).ForEach(func(id, _ []byte) error {
			var v consistency.Version
			if raw := wm.Get(id); raw != nil {
				var err error
				if v, _, err = replication.DecodeVersion(raw); err != nil {
					return fmt.Errorf("watermark of %s: %w", id, err)
				}
			}
			reports[string(id)] = v
			return nil
		})
	})
	return pending, reports, err
}
