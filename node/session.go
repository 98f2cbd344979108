package node

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/batch"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// sessionToken is what a session has seen, carried by the client between requests
// (Dialkv-Session). A node serves a session read only when it is at least as new:
//   - index: the highest committed log index the session wrote or read at, or at which a node
//     found entries below committed (settleSession). The node must have applied it
//     (read-your-writes and monotonic reads for committed data, any number of keys);
//   - seen: versions of keys the session wrote or read, newest last. The node's newest version
//     of such a key (committed or tentative) must be at least that (this covers an eventual
//     write gossip is still spreading, or such a value read). Keys are matched by a 64-bit hash;
//     the key itself travels too when it is short, so that once the token holds more than
//     shedAfterEntries a node can see which versions are committed and shed those entries
//     (settleSession), raising index instead: then a node that has applied index holds them. An
//     entry without its key (a long key, or a token from an older node) stays until newer
//     entries push it out.
//   - floor: the newest version among the entries shed, so that the session's next write is
//     still stamped after everything it saw (observeSession).
//
// Text form: "3.INDEX.BASE64(floor, entries)" ("2.INDEX.BASE64(entries)", entries by hash only,
// from older nodes, is still read). Beyond maxSessionEntries the oldest entry is dropped. Entries
// without their key are never shed and share those places, so the guarantee for versions not
// yet committed holds for the session's maxSessionEntries newest entries, not always for that
// many uncommitted keys.
type sessionToken struct {
	index uint64
	seen  []sessionEntry // oldest first
	floor consistency.Version
}

type sessionEntry struct {
	keyHash uint64
	key     string // "" when not carried (longer than maxTokenKey, or an older token)
	version consistency.Version
}

const (
	sessionFormat     = "3"
	sessionFormatHash = "2" // entries by hash only, written by older nodes
	// maxSessionEntries bounds the entries a token records. Past shedAfterEntries, the node
	// answering sheds those it has committed, so a token reaches this only with that many
	// entries not committed at the nodes it visits (during an outage of the leader, say), or
	// with long keys (no node can shed those).
	maxSessionEntries = 64
	// maxTokenKey is the longest key a token carries in full (longer ones by hash only).
	maxTokenKey = 64
	// shedAfterEntries: a token sheds its committed entries only once it holds more than this.
	shedAfterEntries = 16
)

// keyHash is the 64-bit FNV-1a hash of key, computed in place (hash/fnv would allocate a hasher
// and a copy of the key on every read).
func keyHash(key string) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime64
	}
	return h
}

func (t sessionToken) String() string {
	if t.index == 0 && len(t.seen) == 0 && t.floor.IsZero() {
		return ""
	}
	var raw, text [1024]byte
	s := append(text[:0], sessionFormat+"."...)
	s = strconv.AppendUint(s, t.index, 10)
	if len(t.seen) > 0 || !t.floor.IsZero() {
		b := replication.AppendVersion(raw[:0], t.floor)
		for _, e := range t.seen {
			b = binary.BigEndian.AppendUint64(b, e.keyHash)
			b = binary.AppendUvarint(b, uint64(len(e.key)))
			b = append(b, e.key...)
			b = replication.AppendVersion(b, e.version)
		}
		s = append(s, '.')
		s = base64.RawURLEncoding.AppendEncode(s, b)
	}
	return string(s)
}

// advance returns the token moved up to a committed index.
func (t sessionToken) advance(index uint64) sessionToken {
	if index > t.index {
		t.index = index
	}
	return t
}

// saw returns the token recording version v of key (kept only if newer than what it had), as
// its newest entry. It may leave more than maxSessionEntries entries: settleSession sheds the
// committed ones first and only then drops the oldest.
func (t sessionToken) saw(key string, v consistency.Version) sessionToken {
	if v.IsZero() {
		return t
	}
	h := keyHash(key)
	seen := make([]sessionEntry, 0, len(t.seen)+1)
	for _, e := range t.seen {
		if e.keyHash == h {
			v = consistency.Max(v, e.version)
			continue
		}
		seen = append(seen, e)
	}
	e := sessionEntry{keyHash: h, version: v}
	if len(key) <= maxTokenKey {
		e.key = key
	}
	t.seen = append(seen, e)
	return t
}

// capped returns the token with at most maxSessionEntries entries, the oldest dropped (their
// versions still count in floor).
func (t sessionToken) capped() sessionToken {
	if over := len(t.seen) - maxSessionEntries; over > 0 {
		for _, e := range t.seen[:over] {
			t.floor = consistency.Max(t.floor, e.version)
		}
		t.seen = slices.Clone(t.seen[over:])
	}
	return t
}

// newest is the newest version the session has seen of any key (zero when none is recorded).
func (t sessionToken) newest() consistency.Version {
	v := t.floor
	for _, e := range t.seen {
		v = consistency.Max(v, e.version)
	}
	return v
}

// sessionClockLead bounds how far ahead of a node's physical clock a session token may move it
// (consistency.Clock.ObserveWithin): tokens come from clients, and a forged one must not push
// the cluster's versions into the future. Real skew between nodes is far below it.
const sessionClockLead = 10 * time.Second

// observeSession moves this node's clock past every version the session has seen, so that a
// write it stamps next is newer than the session's earlier writes and reads, even when those
// were stamped by a node whose clock runs ahead: without it, last-writer-wins could keep the
// session's older write over its newer one.
func (n *Node) observeSession(t sessionToken) {
	if v := t.newest(); !v.IsZero() {
		n.observeOutside(v, "session token")
	}
}

// observeOutside moves this node's clock past v, a version from outside it (a session token,
// a follower's stamp, a relayed answer), but at most sessionClockLead ahead of its wall clock. A
// cut is logged, at most once a second (a client could send forged tokens in a loop). (The
// leader's answer to forwarded writes is observed whole: callLeader.)
func (n *Node) observeOutside(v consistency.Version, source string) {
	if !n.clock.ObserveWithin(v, sessionClockLead) {
		return
	}
	now := monoNow()
	if last := n.lastCutLog.Load(); last != 0 && now-last < int64(time.Second) || !n.lastCutLog.CompareAndSwap(last, now) {
		return
	}
	n.logger.Warn("a version far ahead of this node's clock was observed only up to the bound", "from", source, "version", v, "bound", sessionClockLead)
}

// stampedAfterSession returns nil when stamp, a node's stamp for a session's write of key, is
// newer than seen, the version of key the session's token records (zero: none), and else
// errClockSkew. A token moves a clock at most sessionClockLead ahead of its wall clock
// (observeSession), so a node whose clock lags the one that stamped seen by more than that
// stamps the write below it. Acknowledged, such a write is lost to the session: its next read
// returns seen (the newest version a node holds), and last-writer-wins drops the write wherever
// both meet. Stamping the write just above seen instead would trust a client's version beyond
// the lead, which the lead is there to prevent: a forged token would drag the key, and through
// gossip and the log every clock, into the future. So the write is refused before anything is
// stored or proposed; the client tries another node, and this one takes it once seen has
// reached it (gossip, the log), since its clock observes what reaches it.
// retry says what the caller can do: an eventual write can go to another node, a strong one
// only to the leader, once the version has reached it.
func stampedAfterSession(nodeID, key string, stamp, seen consistency.Version, retry string) error {
	if stamp.Newer(seen) {
		return nil
	}
	return fmt.Errorf("%w: %s would stamp this write of %q %v, not newer than the version %v the session has already seen of it: its clock is more than %v behind the clock that stamped that version (a session token moves a node's clock at most that far), and nothing was written; %s",
		errClockSkew, nodeID, key, stamp, seen, sessionClockLead, retry)
}

// strongStampedAfterSession is stampedAfterSession for a strong write of cmd.Key that this node,
// the leader, has stamped. A strong version needs no check: the session saw it committed, so it
// is in the log before this write, and the state machine gives a write stamped below the key's
// committed version that version's successor (a leader that has not applied it yet, its clock
// far behind the leader that stamped it, would otherwise refuse for nothing).
func (n *Node) strongStampedAfterSession(cmd *replication.Command, seen consistency.Version) error {
	if seen.Strong() {
		return nil
	}
	return stampedAfterSession(n.cfg.ID, cmd.Key, cmd.Stamp, seen, "retry in a moment: the leader takes it once that version has reached it (gossip, the log)")
}

// versionOf is the newest version of key the session has seen (zero when none is recorded).
func (t sessionToken) versionOf(key string) consistency.Version {
	if len(t.seen) == 0 {
		return consistency.Version{} // most writes: no token, and no hashing of the key
	}
	h := keyHash(key)
	for _, e := range t.seen {
		if e.keyHash == h {
			return e.version
		}
	}
	return consistency.Version{}
}

func parseSession(s string) (sessionToken, error) {
	if s == "" {
		return sessionToken{}, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != sessionFormat && parts[0] != sessionFormatHash {
		return sessionToken{}, fmt.Errorf("%w: session token %q is not one this node issued (format %s)", replication.ErrInvalid, s, sessionFormat)
	}
	var t sessionToken
	var err error
	if t.index, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return sessionToken{}, fmt.Errorf("%w: session token %q: %v", replication.ErrInvalid, s, err)
	}
	if len(parts) == 3 {
		raw, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			return sessionToken{}, fmt.Errorf("%w: session token %q: %v", replication.ErrInvalid, s, err)
		}
		withKeys := parts[0] == sessionFormat
		if withKeys {
			if t.floor, raw, err = replication.DecodeVersion(raw); err != nil {
				return sessionToken{}, fmt.Errorf("%w: session token %q: %v", replication.ErrInvalid, s, err)
			}
		}
		for len(raw) > 0 {
			if len(t.seen) == maxSessionEntries {
				return sessionToken{}, fmt.Errorf("%w: session token %q has more than %d entries", replication.ErrInvalid, s, maxSessionEntries)
			}
			if len(raw) < 8 {
				return sessionToken{}, fmt.Errorf("%w: session token %q is truncated", replication.ErrInvalid, s)
			}
			e := sessionEntry{keyHash: binary.BigEndian.Uint64(raw)}
			raw = raw[8:]
			if withKeys {
				n, size := binary.Uvarint(raw)
				if size <= 0 || n > maxTokenKey || uint64(len(raw)-size) < n {
					return sessionToken{}, fmt.Errorf("%w: session token %q has a malformed key", replication.ErrInvalid, s)
				}
				e.key = string(raw[size : size+int(n)])
				raw = raw[size+int(n):]
				if e.key != "" && keyHash(e.key) != e.keyHash {
					return sessionToken{}, fmt.Errorf("%w: session token %q: a key does not match its hash", replication.ErrInvalid, s)
				}
			}
			e.version, raw, err = replication.DecodeVersion(raw)
			if err != nil {
				return sessionToken{}, fmt.Errorf("%w: session token %q: %v", replication.ErrInvalid, s, err)
			}
			t.seen = append(t.seen, e)
		}
	}
	return t, nil
}

// settleSession sheds from t the entries whose version this node has committed, raising t's
// index to the applied index of the state that holds them: every node that has applied that
// index holds those versions or newer ones. It sheds too an entry whose key is gone, from both
// layers, while the purge horizon of that state is newer than its version, but only when this
// node stamped that version or it is a strong write's (holdsSessionVersion, for the same
// reasons; the token's index, which shedding only raises, covers a strong write): its origin gives a
// version up only for a newer one of the key, which it then holds until that is committed, or
// once the version is committed, so there the key's absence means a newer tombstone, purged
// since, and every node that has applied the index finds the key gone as well. Elsewhere the
// absence proves nothing: a version superseded before any commit leaves every tentative layer,
// so no watermark holds the horizon below it, while the newer write may not have reached this
// node yet. The tentative layer is read before the committed one: a commit drops a tentative
// entry only after the committed state that supersedes it is in place. Then it caps the token.
//
// It does so only once the token holds more than shedAfterEntries: shedding raises the index to
// this node's, which nodes further behind must then reach before they serve the session, so a
// small token is left as it is (as tokens were before they could shed).
func (n *Node) settleSession(t sessionToken) sessionToken {
	if len(t.seen) <= shedAfterEntries {
		return t
	}
	var keys []string
	for _, e := range t.seen {
		if e.key != "" {
			keys = append(keys, e.key)
		}
	}
	if len(keys) == 0 {
		return t.capped()
	}
	var own []string // keys of the entries this node stamped, or a leader did (strong writes)
	for _, e := range t.seen {
		if e.key != "" && n.vouchesForAbsence(e.version) {
			own = append(own, e.key)
		}
	}
	var held map[string]bool // of those, the keys this node holds a tentative version of
	if len(own) > 0 {
		ws, err := n.store.GetTentative(own)
		if err != nil {
			return t.capped()
		}
		for _, w := range ws {
			if held == nil {
				held = map[string]bool{}
			}
			held[w.Key] = true
		}
	}
	committed, applied, horizon, err := n.store.CommittedVersions(keys)
	if err != nil {
		return t.capped()
	}
	kept := make([]sessionEntry, 0, len(t.seen))
	i := 0
	for _, e := range t.seen {
		if e.key != "" {
			v := committed[i]
			i++
			purged := v.IsZero() && horizon.Newer(e.version) && n.vouchesForAbsence(e.version) && !held[e.key]
			if !v.IsZero() && v.Compare(e.version) >= 0 || purged {
				t.floor = consistency.Max(t.floor, e.version)
				t = t.advance(applied)
				continue
			}
		}
		kept = append(kept, e)
	}
	t.seen = kept
	return t.capped()
}

// commitSessionVersionFirst makes a strong delete or conditional write of a key in a session come
// after the version of the key the session has seen (written or read), when that version is an
// eventual write not yet committed here: it has the write committed first. The state machine
// judges those by the committed layer alone, so without this a session's strong delete right
// after its own eventual write found nothing to delete, wrote no tombstone, and the eventual
// write, committed later, stood again; a create-if-absent succeeded on a key the session had
// just written. (A plain strong put needs nothing: the leader stamps it after the session's
// version of its key, or refuses it, strongStampedAfterSession, so last-writer-wins orders it
// after the eventual write whenever that commits.)
//
// The node waits briefly for that version as a session read does, then submits the newest write
// of the key it holds for commit, which is the session's version or a newer one; the write
// proposed next follows it in the log. A node that never gets the version refuses (503
// unavailable), and the client tries another node. A version in a strong space was committed
// before the session saw it, so it needs nothing. ctx bounds it: the write's LeaderWait, which
// the proposal that follows shares.
func (n *Node) commitSessionVersionFirst(ctx context.Context, token sessionToken, cmd *replication.Command) error {
	if cmd.Type != replication.CmdDelete && cmd.Cond == replication.CondNone {
		return nil
	}
	key := cmd.Key
	want := token.versionOf(key)
	if want.IsZero() || want.Strong() {
		return nil
	}
	keys, wants, err := n.uncommittedSessionVersions([]string{key}, []consistency.Version{want})
	if err != nil || len(keys) == 0 {
		return err
	}
	return n.submitSessionVersions(ctx, sessionWait, keys, wants, fmt.Sprintf("this session's earlier write of %q", key))
}

// uncommittedSessionVersions returns those of keys, and of wants, the versions of them a session
// has seen, that this node has not committed (no committed version at least as new). A version
// below the purge horizon is left out too: it was committed or superseded already, and can never
// be committed again (the state machine refuses writes below it). Only its origin could tell that
// from the key's absence (holdsSessionVersion); any other node would wait for a version no node
// keeps and refuse, for good once the origin is gone.
func (n *Node) uncommittedSessionVersions(keys []string, wants []consistency.Version) ([]string, []consistency.Version, error) {
	committed, _, horizon, err := n.store.CommittedVersions(keys)
	if err != nil {
		return nil, nil, err
	}
	var ks []string
	var ws []consistency.Version
	for i, v := range committed {
		if v.Compare(wants[i]) < 0 && !horizon.Newer(wants[i]) {
			ks, ws = append(ks, keys[i]), append(ws, wants[i])
		}
	}
	return ks, ws, nil
}

// submitSessionVersions waits, for at most wait each, until this node holds the versions wants
// of keys (a session's, gossip usually brings them within milliseconds), then submits the newest
// write it holds of each key, the session's version or a newer one, for commit as eventual
// batches (ordinary committer batches, so mixed versions apply the same log): one, unless the
// writes add up to more than a committer batch carries (maxCommitBytes; a token names up to 64
// keys, of values up to --max-value-size each). A key committed here meanwhile, or whose version
// was a delete purged since, needs nothing. what names the writes in the error when a batch
// cannot be submitted.
func (n *Node) submitSessionVersions(ctx context.Context, wait time.Duration, keys []string, wants []consistency.Version, what string) error {
	var writes []replication.Write
	for i, key := range keys {
		if err := n.waitForVersion(ctx, key, wants[i], wait); err != nil {
			return err
		}
		tv, ok, err := n.store.Tentative(key)
		if err != nil {
			return err
		}
		if ok && tv.Version.Compare(wants[i]) >= 0 {
			writes = append(writes, replication.Write{Key: key, Value: tv})
		}
	}
	for _, part := range batch.Split(writes, commitSize, n.commitBytes()) {
		if err := n.submitBatch(ctx, replication.Command{Type: replication.CmdEventualBatch, Writes: part}); err != nil {
			return fmt.Errorf("%w: committing %s first: %v", replication.ErrStale, what, err)
		}
	}
	return nil
}

// commitSessionWritesIn makes a session list show the session's own writes in the listed range.
// A list reads the committed layer only, at every level: a session list that showed what the
// committed layer held would leave out the session's eventual write it had just made, or show a
// key the session had just deleted. So the node has the versions the session has seen of keys
// in the range, and not yet committed here, committed first, as commitSessionVersionFirst does
// for one key: it waits briefly for each, submits the newest write it holds of those keys as one
// eventual batch, then waits until its committed layer holds them. Keys the token carries by hash
// only (longer than maxTokenKey) cannot be matched against the range and are not covered. A node
// that cannot get a version, or reach the leader, refuses (503 unavailable), as a session read
// does.
func (n *Node) commitSessionWritesIn(ctx context.Context, forwarded bool, token sessionToken, lr store.ListRange) error {
	var keys []string
	var wants []consistency.Version
	for _, e := range token.seen {
		if e.key != "" && !e.version.Strong() && strings.HasPrefix(e.key, lr.Prefix) && e.key > lr.After {
			keys, wants = append(keys, e.key), append(wants, e.version)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	keys, wants, err := n.uncommittedSessionVersions(keys, wants)
	if err != nil || len(keys) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LeaderWait)
	defer cancel()
	wait := sessionWait
	if forwarded {
		wait = forwardedSessionWait
	}
	if err := n.submitSessionVersions(ctx, wait, keys, wants, "this session's writes in the listed range"); err != nil {
		return err
	}
	for {
		if keys, wants, err = n.uncommittedSessionVersions(keys, wants); err != nil || len(keys) == 0 {
			return err
		}
		if pause(ctx, 5*time.Millisecond) != nil {
			return fmt.Errorf("%w: %s has not yet applied this session's write of %q, committed for the list", replication.ErrStale, n.cfg.ID, keys[0])
		}
	}
}
