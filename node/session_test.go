package node

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

func TestSessionTokenRoundTripAndBounds(t *testing.T) {
	var tok sessionToken
	if tok.String() != "" {
		t.Fatalf("empty token renders %q", tok.String())
	}
	tok = tok.advance(7).saw("a", consistency.Version{Wall: 5, Node: "n1"})
	tok = tok.saw("a", consistency.Version{Wall: 3, Node: "n2"}) // older: keeps the newer
	tok = tok.advance(4)                                         // lower index: keeps 7
	got, err := parseSession(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.index != 7 || got.versionOf("a") != (consistency.Version{Wall: 5, Node: "n1"}) || !got.versionOf("b").IsZero() {
		t.Fatalf("round trip of %q = %+v", tok.String(), got)
	}
	for i := 0; i < 3*maxSessionKeys; i++ {
		tok = tok.saw(fmt.Sprintf("k%d", i), consistency.Version{Wall: int64(i + 10), Node: "n1"})
	}
	if len(tok.seen) != maxSessionKeys || tok.versionOf(fmt.Sprintf("k%d", 3*maxSessionKeys-1)).IsZero() {
		t.Errorf("token keeps %d keys (want %d, the newest)", len(tok.seen), maxSessionKeys)
	}
	if len(tok.String()) > 1024 {
		t.Errorf("token is %d bytes: too big for a header", len(tok.String()))
	}
	for _, bad := range []string{"1.5", "2", "2.x", "2.5.!!", "2.5.AAAA"} {
		if _, err := parseSession(bad); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("parseSession(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

// keyHash is computed in place; it must stay the FNV-1a hash tokens already in clients' hands
// were made with.
func TestKeyHashIsFNV1a(t *testing.T) {
	for _, key := range []string{"", "k", "user/42", "ключ", strings.Repeat("x", 300)} {
		h := fnv.New64a()
		h.Write([]byte(key))
		if got, want := keyHash(key), h.Sum64(); got != want {
			t.Errorf("keyHash(%q) = %x, want %x", key, got, want)
		}
	}
}
