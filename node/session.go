package node

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dialkv/dialkv/replication"
)

// sessionToken is what a session has seen: for now the highest committed log index it wrote or
// read at. A node serves a session read only once it has applied that index, which gives
// read-your-writes and monotonic reads across nodes for committed data. The text form carries a
// format number so later fields (the session's tentative writes) can be added compatibly.
type sessionToken struct {
	index uint64
}

const sessionFormat = "1"

func (t sessionToken) String() string {
	if t.index == 0 {
		return ""
	}
	return sessionFormat + "." + strconv.FormatUint(t.index, 10)
}

func (t sessionToken) advance(index uint64) sessionToken {
	if index > t.index {
		t.index = index
	}
	return t
}

func parseSession(s string) (sessionToken, error) {
	if s == "" {
		return sessionToken{}, nil
	}
	format, rest, ok := strings.Cut(s, ".")
	if !ok || format != sessionFormat {
		return sessionToken{}, fmt.Errorf("%w: session token %q is not one this node issued (format %s)", replication.ErrInvalid, s, sessionFormat)
	}
	index, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return sessionToken{}, fmt.Errorf("%w: session token %q: %v", replication.ErrInvalid, s, err)
	}
	return sessionToken{index: index}, nil
}
