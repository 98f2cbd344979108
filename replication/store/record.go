package store

import (
	"fmt"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// recordFormat is the first byte of every stored key record.
const recordFormat byte = 1

const flagTombstone byte = 1

// encodeRecord lays a value out as [format][version][flags][data].
func encodeRecord(v consistency.Value) []byte {
	b := make([]byte, 0, 2+12+1+len(v.Version.Node)+len(v.Data)+1)
	b = append(b, recordFormat)
	b = replication.AppendVersion(b, v.Version)
	var flags byte
	if v.Tombstone {
		flags |= flagTombstone
	}
	b = append(b, flags)
	return append(b, v.Data...)
}

// decodeRecord parses encodeRecord's output; Data is copied out of raw, which may be bbolt's.
func decodeRecord(raw []byte) (consistency.Value, error) {
	version, rest, err := decodeHeader(raw)
	if err != nil {
		return consistency.Value{}, err
	}
	v := consistency.Value{Version: version, Tombstone: rest[0]&flagTombstone != 0}
	if !v.Tombstone {
		v.Data = append([]byte{}, rest[1:]...)
	}
	return v, nil
}

// recordVersion is the version of an encoded record, without copying its value out (merges
// compare versions; the backlog summary reads every entry's).
func recordVersion(raw []byte) (consistency.Version, error) {
	v, _, err := decodeHeader(raw)
	return v, err
}

// decodeHeader checks raw's format and returns its version and the rest: flags, then data.
func decodeHeader(raw []byte) (consistency.Version, []byte, error) {
	if len(raw) < 1 || raw[0] != recordFormat {
		return consistency.Version{}, nil, fmt.Errorf("store: record format %v unknown", raw[:min(1, len(raw))])
	}
	version, rest, err := replication.DecodeVersion(raw[1:])
	if err != nil || len(rest) < 1 {
		return consistency.Version{}, nil, fmt.Errorf("store: corrupt record: %v", err)
	}
	return version, rest, nil
}
