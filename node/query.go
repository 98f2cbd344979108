package node

import (
	"net/url"
	"strings"
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
