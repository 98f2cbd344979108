package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/client"
)

// listDoc decodes kvctl list --json output, which must be one JSON document on one line.
func listDoc(t *testing.T, stdout string) (client.ListResponse, client.ErrorBody) {
	t.Helper()
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "}\n") || !json.Valid([]byte(stdout)) {
		t.Fatalf("list --json printed %q, want one JSON document on one line", stdout)
	}
	var page client.ListResponse
	var eb client.ErrorBody
	if err := json.Unmarshal([]byte(stdout), &page); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(stdout), &eb); err != nil {
		t.Fatal(err)
	}
	return page, eb
}

func docKeys(t *testing.T, page client.ListResponse) []string {
	t.Helper()
	var keys []string
	for _, it := range page.Items {
		k, err := it.RawKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// kvctl list goes through every page of a list longer than the node's page size, in text and
// as one --json document; --limit is the total over the pages and --after goes on from a key,
// also one that is not UTF-8.
func TestListOverPages(t *testing.T) {
	f := newFakeCluster(t)
	keys := []string{"k/1", "k/2", "k/3", "k/4", "k/\xff\x01", "k/\xff\xfe"}
	for _, k := range append([]string{"j", "l"}, keys...) {
		mustKvctl(t, f.addr(), "put", k, "v")
	}
	f.pageSize = 2

	r := mustKvctl(t, f.addr(), "list", "--prefix", "k/")
	want := "k/1\tv\nk/2\tv\nk/3\tv\nk/4\tv\n\"k/\\xff\\x01\"\tv\n\"k/\\xff\\xfe\"\tv\n"
	if r.stdout != want || r.stderr != "" {
		t.Errorf("list over 3 pages: stdout %q stderr %q, want %q and nothing on stderr", r.stdout, r.stderr, want)
	}

	page, _ := listDoc(t, mustKvctl(t, f.addr(), "list", "--prefix", "k/", "--json").stdout)
	if !slices.Equal(docKeys(t, page), keys) || page.More || page.Next != "" || page.Meta.Node != "n1" {
		t.Errorf("list --json over 3 pages: %+v, want every key, no more, the meta", page)
	}

	r = mustKvctl(t, f.addr(), "list", "--prefix", "k/", "--limit", "3")
	if r.stdout != "k/1\tv\nk/2\tv\nk/3\tv\n" || !strings.Contains(r.stderr, "the list stops at 3 keys (--limit)") {
		t.Errorf("list --limit 3 over pages of 2: stdout %q stderr %q", r.stdout, r.stderr)
	}
	page, _ = listDoc(t, mustKvctl(t, f.addr(), "list", "--prefix", "k/", "--limit", "5", "--json").stdout)
	if next, _ := page.NextKey(); !slices.Equal(docKeys(t, page), keys[:5]) || !page.More || next != "k/\xff\x01" || page.NextBase64 == "" {
		t.Errorf("list --limit 5 --json: %+v, want 5 keys, more, next_base64 of k/\\xff\\x01", page)
	}

	if r := mustKvctl(t, f.addr(), "list", "--prefix", "k/", "--after", "k/2"); r.stdout != "k/3\tv\nk/4\tv\n\"k/\\xff\\x01\"\tv\n\"k/\\xff\\xfe\"\tv\n" {
		t.Errorf("list --after k/2: %q", r.stdout)
	}
	page, _ = listDoc(t, mustKvctl(t, f.addr(), "list", "--prefix", "k/", "--after", "k/\xff\x01", "--json").stdout)
	if !slices.Equal(docKeys(t, page), keys[5:]) || page.More {
		t.Errorf("list --after k/\\xff\\x01: %+v", page)
	}
}

// A list that fails after printing keys exits 1 and says where to go on; with --json the keys
// printed and the error are still one document.
func TestListFailingBetweenPages(t *testing.T) {
	f := newFakeCluster(t)
	for _, k := range []string{"a", "b", "c"} {
		mustKvctl(t, f.addr(), "put", k, "v")
	}
	f.pageSize, f.failAfter = 2, "b"
	r := kvctl(t, nil, "", "list", "--endpoints", f.addr())
	if r.code != 1 || r.stdout != "a\tv\nb\tv\n" || !strings.Contains(r.stderr, "the list stopped after 2 keys: go on with --after") {
		t.Errorf("list failing on page 2: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = kvctl(t, nil, "", "list", "--json", "--endpoints", f.addr())
	page, eb := listDoc(t, r.stdout)
	if r.code != 1 || !slices.Equal(docKeys(t, page), []string{"a", "b"}) || !page.More || page.Next != "b" || eb.Code != client.CodeUnavailable {
		t.Errorf("list --json failing on page 2: exit %d, %s", r.code, r.stdout)
	}
}

// -v prints the fields an answer carried, and only those: an answer without Dialkv-Applied-Index
// (a request refused before any level was chosen, say a bad --consistency) printed
// "applied index: 0", an index no running node reports (a cluster's log starts with its
// configuration entry).
func TestWriteMetaPrintsOnlyWhatTheAnswerCarried(t *testing.T) {
	var b strings.Builder
	writeMeta(&b, client.Meta{Node: "n1"})
	if got := b.String(); strings.Contains(got, "applied index") || !strings.Contains(got, "node:") {
		t.Errorf("metadata of an answer naming only its node:\n%s", got)
	}
	b.Reset()
	writeMeta(&b, client.Meta{Node: "n1", AppliedIndex: 7})
	if got := b.String(); !strings.Contains(got, "applied index: 7") {
		t.Errorf("metadata with applied index 7:\n%s", got)
	}
}
