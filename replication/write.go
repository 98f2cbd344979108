package replication

import (
	"fmt"

	"github.com/dialkv/dialkv/consistency"
)

// Write is one eventual write as it travels: from the node that took it, through gossip and
// anti-entropy to every node's tentative layer, and in a committer batch into the Raft log. The
// node that took it is Value.Version.Node (its origin).
type Write struct {
	Key   string
	Value consistency.Value
}

// Origin is the id of the node that took the write.
func (w Write) Origin() string { return w.Value.Version.Node }

const writeFlagTombstone byte = 1

// AppendWrite appends the binary form of w.
func AppendWrite(b []byte, w Write) []byte {
	b = appendString(b, w.Key)
	b = AppendVersion(b, w.Value.Version)
	var flags byte
	if w.Value.Tombstone {
		flags |= writeFlagTombstone
	}
	b = append(b, flags)
	return appendBytes(b, w.Value.Data)
}

// EncodeWrites returns the binary form of ws: a count, then each write.
func EncodeWrites(ws []Write) []byte {
	size := 8
	for _, w := range ws {
		size += 32 + len(w.Key) + len(w.Value.Data) + len(w.Value.Version.Node)
	}
	b := appendUvarint(make([]byte, 0, size), uint64(len(ws)))
	for _, w := range ws {
		b = AppendWrite(b, w)
	}
	return b
}

// DecodeWrites parses EncodeWrites' output. The writes' data is copied.
func DecodeWrites(data []byte) ([]Write, error) {
	d := decoder{buf: data}
	ws, err := d.writes()
	if err == nil && len(d.buf) != 0 {
		err = fmt.Errorf("%d trailing bytes after writes", len(d.buf))
	}
	return ws, err
}

func (d *decoder) writes() ([]Write, error) {
	n := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if n > uint64(len(d.buf)) { // every write takes at least one byte
		return nil, errShort
	}
	ws := make([]Write, 0, min(n, maxPrealloc))
	for i := uint64(0); i < n && d.err == nil; i++ {
		w := Write{Key: d.string()}
		w.Value.Version = d.version()
		w.Value.Tombstone = d.byte()&writeFlagTombstone != 0
		if data := d.bytes(); len(data) > 0 {
			w.Value.Data = append([]byte(nil), data...)
		}
		ws = append(ws, w)
	}
	return ws, d.err
}
