package node

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// sessionToken is what a session has seen, carried by the client between requests
// (Dialkv-Session). A node serves a session read only when it is at least as new:
//   - index: the highest committed log index the session wrote or read at. The node must have
//     applied it (read-your-writes and monotonic reads for committed data);
//   - seen: for the session's most recent keys (by a 64-bit hash of the key, so tokens stay
//     small whatever the keys), the newest version it wrote or read. The node's newest version of
//     such a key (committed or tentative) must be at least that (the same for eventual writes
//     that gossip is still spreading).
//
// Text form: "2.INDEX.BASE64(entries)". Entries beyond maxSessionKeys drop the oldest.
type sessionToken struct {
	index uint64
	seen  []sessionEntry // oldest first
}

type sessionEntry struct {
	keyHash uint64
	version consistency.Version
}

const (
	sessionFormat  = "2"
	maxSessionKeys = 16
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
	if t.index == 0 && len(t.seen) == 0 {
		return ""
	}
	var raw, text [512]byte
	s := append(text[:0], sessionFormat+"."...)
	s = strconv.AppendUint(s, t.index, 10)
	if len(t.seen) > 0 {
		b := raw[:0]
		for _, e := range t.seen {
			b = binary.BigEndian.AppendUint64(b, e.keyHash)
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

// saw returns the token recording version v of key (kept only if newer than what it had).
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
	seen = append(seen, sessionEntry{keyHash: h, version: v})
	if len(seen) > maxSessionKeys {
		seen = seen[len(seen)-maxSessionKeys:]
	}
	t.seen = seen
	return t
}

// newest is the newest version the session has seen of any key (zero when none is recorded).
func (t sessionToken) newest() consistency.Version {
	var v consistency.Version
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
// a follower's stamp, a peer's answer), but at most sessionClockLead ahead of its wall clock. A
// cut is logged, at most once a second (a client could send forged tokens in a loop).
func (n *Node) observeOutside(v consistency.Version, source string) {
	if !n.clock.ObserveWithin(v, sessionClockLead) {
		return
	}
	now := time.Now().UnixNano()
	if last := n.lastCutLog.Load(); now-last < int64(time.Second) || !n.lastCutLog.CompareAndSwap(last, now) {
		return
	}
	n.logger.Warn("a version far ahead of this node's clock was observed only up to the bound", "from", source, "version", v, "bound", sessionClockLead)
}

// versionOf is the newest version of key the session has seen (zero when none is recorded).
func (t sessionToken) versionOf(key string) consistency.Version {
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
	if len(parts) < 2 || len(parts) > 3 || parts[0] != sessionFormat {
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
		for len(raw) > 0 && len(t.seen) <= maxSessionKeys {
			if len(raw) < 8 {
				return sessionToken{}, fmt.Errorf("%w: session token %q is truncated", replication.ErrInvalid, s)
			}
			e := sessionEntry{keyHash: binary.BigEndian.Uint64(raw)}
			e.version, raw, err = replication.DecodeVersion(raw[8:])
			if err != nil {
				return sessionToken{}, fmt.Errorf("%w: session token %q: %v", replication.ErrInvalid, s, err)
			}
			t.seen = append(t.seen, e)
		}
	}
	return t, nil
}
