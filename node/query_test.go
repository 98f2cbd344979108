package node

import (
	"net/url"
	"testing"
)

// The query reader must answer as url.ParseQuery would have, for every name a handler asks.
func checkQueryLikeParseQuery(t *testing.T, raw string) {
	t.Helper()
	want, _ := url.ParseQuery(raw) // on error it still holds every pair that parsed
	q := query(raw)
	names := []string{"consistency", "max_staleness", "if_version", "if_absent", "pretty", "limit", "prefix", "", "a b", "a+b", "x"}
	for name := range want {
		names = append(names, name)
	}
	for _, name := range names {
		if got, w := q.Get(name), want.Get(name); got != w {
			t.Errorf("query(%q).Get(%q) = %q, url.ParseQuery says %q", raw, name, got, w)
		}
		if got, w := q.Has(name), want.Has(name); got != w {
			t.Errorf("query(%q).Has(%q) = %v, url.ParseQuery says %v", raw, name, got, w)
		}
	}
}

func TestQueryReadsAsParseQuery(t *testing.T) {
	for _, raw := range []string{
		"",
		"consistency=eventual",
		"consistency=strong&if_version=",
		"if_version",
		"pretty&consistency=bounded&max_staleness=2s",
		"consistency=eventual&consistency=strong", // the first value wins
		"consistency=%zz&consistency=strong",      // a bad escape skips its pair only
		"consistency=a;b&consistency=strong",      // as does a semicolon
		"prefix=a%2Fb+c&limit=10",
		"a+b=1&a%20b=2",
		"&&consistency=&",
		"=x&x=",
		"%=1&x=%",
	} {
		checkQueryLikeParseQuery(t, raw)
	}
}

func FuzzQueryReadsAsParseQuery(f *testing.F) {
	for _, s := range []string{"consistency=eventual&pretty", "a=%41&a=b", "x;y=1&x=2", "k+1=v%2B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkQueryLikeParseQuery(t, raw)
	})
}

// check runs on every key request (the path dd1d92f made allocation-free): it must not allocate
// when the query is good.
func TestQueryCheckDoesNotAllocate(t *testing.T) {
	q := query("consistency=bounded&max_staleness=2s&pretty")
	if allocs := testing.AllocsPerRun(100, func() {
		if err := q.check(getParams); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("check allocated %v times per call", allocs)
	}
}

// Bool is the one rule of the boolean parameters (pretty, if_absent): absent false, bare true,
// strconv.ParseBool's words, and an error for anything else, which check refuses too.
func TestQueryBool(t *testing.T) {
	for _, c := range []struct {
		raw       string
		want, bad bool
	}{
		{"", false, false},
		{"pretty", true, false},
		{"pretty=", true, false},
		{"pretty=true", true, false},
		{"pretty=1", true, false},
		{"pretty=FALSE", false, false},
		{"pretty=0", false, false},
		{"pretty=maybe", false, true},
		{"pretty=yes", false, true},
	} {
		got, err := query(c.raw).Bool("pretty")
		if got != c.want || (err != nil) != c.bad {
			t.Errorf("query(%q).Bool(pretty) = %v, %v; want %v, error %v", c.raw, got, err, c.want, c.bad)
		}
		if err := query(c.raw).check(getParams); (err != nil) != c.bad {
			t.Errorf("query(%q).check = %v; want an error %v", c.raw, err, c.bad)
		}
	}
}
