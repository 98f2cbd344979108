package node

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dialkv/dialkv/replication"
)

// query is a request's raw query string, read in place. A key request names a parameter or two,
// and url.Values built a map, a slice per parameter and unescaped copies on every request (5 % of
// a node's CPU on an eventual-read load). Get and Has read what url.ParseQuery would have
// produced: pairs split on '&', a pair holding ';' or an escape that does not decode is skipped,
// the first value of a name wins. (One difference: url.ParseQuery gives up on a query of more
// than 10,000 pairs; query still reads it, a pair at a time.)
type query string

// Get is name's first value, unescaped, or "" when the query does not name it.
func (q query) Get(name string) string {
	v, _ := q.lookup(name)
	return v
}

// Has says whether the query names name, with or without a value.
func (q query) Has(name string) bool {
	_, ok := q.lookup(name)
	return ok
}

func (q query) lookup(name string) (string, bool) {
	rest := string(q)
	for rest != "" {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, ok := unescapeQuery(k)
		if !ok || k != name {
			continue
		}
		if v, ok = unescapeQuery(v); ok {
			return v, true
		}
	}
	return "", false
}

// unescapeQuery decodes s as url.QueryUnescape does, without allocating when there is nothing to
// decode.
func unescapeQuery(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// The parameters each key request takes (docs/http-api.md), for query.check.
var (
	getParams    = []string{"consistency", "max_staleness", "pretty"}
	listParams   = []string{"consistency", "max_staleness", "prefix", "limit", "after", "after_base64", "pretty"}
	putParams    = []string{"consistency", "if_version", "if_absent", "pretty"}
	deleteParams = []string{"consistency", "if_version", "pretty"}
)

// check refuses (replication.ErrInvalid) a query that names a parameter not in allowed, names
// one twice, or holds a pair Get would skip (a ';' or an escape that does not decode). Get reads
// the first value of a name and ignores every other pair, so without this a typo (if_verison,
// consistancy), a doubled name (consistency=strong appended to a URL that already says
// eventual) or an old-style ';' separator would quietly turn a compare-and-set into a plain
// write, or a write or read into a weaker one than the caller asked for. At most 64 names.
func (q query) check(allowed []string) error {
	var seen uint64
	rest := string(q)
	for rest != "" {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return fmt.Errorf("%w: query parameter %q holds a ';': separate parameters with '&' (and escape a ';' in a value as %%3B)", replication.ErrInvalid, pair)
		}
		k, v, _ := strings.Cut(pair, "=")
		name, ok := unescapeQuery(k)
		if ok {
			_, ok = unescapeQuery(v)
		}
		if !ok {
			return fmt.Errorf("%w: query parameter %q is not URL-escaped properly", replication.ErrInvalid, pair)
		}
		i := slices.Index(allowed, name)
		if i < 0 {
			return fmt.Errorf("%w: unknown query parameter %q: this request takes %s", replication.ErrInvalid, name, strings.Join(allowed, ", "))
		}
		if seen&(1<<i) != 0 {
			return fmt.Errorf("%w: query parameter %q is given twice: send it once", replication.ErrInvalid, name)
		}
		seen |= 1 << i
		if slices.Contains(boolParams, name) {
			if _, err := q.Bool(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// boolParams are the parameters read with Bool; check refuses other values for them.
var boolParams = []string{"pretty", "if_absent"}

// Bool reads the boolean parameter name by one rule for all of them: absent is false, bare (no
// value) is true, else its value as strconv.ParseBool reads it (true, false, 1, 0, ...). Any
// other value is an error (replication.ErrInvalid) rather than a guess: pretty=maybe taken
// for true once wrote the value and then indented the answer, and if_absent=yes taken for false
// would overwrite the very value the caller meant to keep.
func (q query) Bool(name string) (bool, error) {
	s, ok := q.lookup(name)
	if !ok {
		return false, nil
	}
	if s == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%w: %s %q is not a boolean: want true or false (or the bare name for true)", replication.ErrInvalid, name, s)
	}
	return b, nil
}
