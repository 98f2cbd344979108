package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/syncbuf"
)

// result is what one kvctl run left behind.
type result struct {
	stdout, stderr string
	code           int
}

// kvctl runs the command line args as main would, with stdin and the environment given.
func kvctl(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	code := report(&stderr, err)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// mustKvctl runs args against the fake cluster at addr and fails the test unless it succeeds.
func mustKvctl(t *testing.T, addr string, args ...string) result {
	t.Helper()
	r := kvctl(t, nil, "", append(args, "--endpoints", addr)...)
	if r.code != 0 {
		t.Fatalf("kvctl %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r
}

// TestKeyCommands runs a session of key commands against a fake node, each step checking
// stdout, stderr and the exit status.
func TestKeyCommands(t *testing.T) {
	f := newFakeCluster(t)
	ep := "--endpoints=" + f.addr()
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
		// stdout is the exact output; stdoutHas and stderrHas are substrings.
		stdout    *string
		stdoutHas []string
		stderrHas []string
	}{
		{name: "put prints nothing", args: []string{"put", "a", "one", ep}, stdout: ptr("")},
		{name: "get prints the value alone", args: []string{"get", "a", ep}, stdout: ptr("one")},
		{name: "flags before the command", args: []string{ep, "-v", "get", "a"}, stdout: ptr("one"),
			stderrHas: []string{"consistency:   strong", "node:          n1", "version:       1.0@n1", "applied index: 1", "state:         committed"}},
		{name: "get --json", args: []string{"get", "--json", "a", ep}, stdoutHas: []string{
			`{"key":"a","value":"one","version":"1.0@n1","state":"committed","meta":{"consistency":"strong","node":"n1"`}},
		{name: "put -v shows metadata", args: []string{"put", "a", "two", "-v", ep, "--consistency", "eventual"}, stdout: ptr(""),
			stderrHas: []string{"consistency:   eventual", "version:       2.0@n1"}},
		{name: "put --json shows metadata", args: []string{"put", "b", "x", ep, "--json"},
			stdoutHas: []string{`{"key":"b","version":"3.0@n1","meta":{"consistency":"strong","node":"n1"`}},
		{name: "put from stdin", args: []string{"put", "bin", "-", ep}, stdin: "\xff\x00raw\n", stdout: ptr("")},
		{name: "binary value comes back exactly", args: []string{"get", "bin", ep}, stdout: ptr("\xff\x00raw\n")},
		{name: "binary value in JSON is base64", args: []string{"get", "bin", ep, "--json"},
			stdoutHas: []string{`"value":"","value_base64":"/wByYXcK"`}},
		{name: "missing key", args: []string{"get", "nope", ep}, code: 3, stdout: ptr(""),
			stderrHas: []string{`kvctl: not_found: key "nope" not found (node n1)`}},
		// A script reading --json output gets a document on failure too.
		{name: "missing key --json", args: []string{"get", "nope", ep, "--json"}, code: 3,
			stdoutHas: []string{`{"error":"key \"nope\" not found","code":"not_found","meta":{"consistency":"strong","node":"n1",`},
			stderrHas: []string{`kvctl: not_found: key "nope" not found (node n1)`}},
		{name: "unreachable --json", args: []string{"get", "nope", "--endpoints", "127.0.0.1:1", "--json"}, code: 1,
			stdoutHas: []string{`{"error":"GET 127.0.0.1:1: `, `","code":"transport"}`}},
		{name: "status unreachable --json", args: []string{"status", "--endpoints", "127.0.0.1:1", "--json"}, code: 1,
			stdoutHas: []string{`{"error":"GET 127.0.0.1:1: `, `","code":"transport"}`}},
		{name: "list unreachable --json", args: []string{"list", "--endpoints", "127.0.0.1:1", "--json"}, code: 1,
			stdoutHas: []string{`{"error":"GET 127.0.0.1:1: `, `","code":"transport"}`}},
		{name: "put to no endpoint that answers --json", args: []string{"put", "k", "v", "--endpoints", "127.0.0.1:1,127.0.0.1:2", "--json"}, code: 1,
			stdoutHas: []string{`{"error":"no endpoint answered: tried 127.0.0.1:1 (connection refused), 127.0.0.1:2 (connection refused)","code":"transport"}`}},
		// kvctl's own failure (here the session file, a directory) is no server's: no code.
		{name: "local error --json", args: []string{"get", "a", ep, "--session", t.TempDir(), "--json"}, code: 1,
			stdoutHas: []string{`{"error":"reading session file: `, `","code":""}`}},
		{name: "cas on the right version", args: []string{"cas", "a", "three", "--version", "2.0@n1", ep}, stdout: ptr("")},
		{name: "cas on a stale version", args: []string{"cas", "a", "four", "--version", "2.0@n1", ep}, code: 4,
			stderrHas: []string{"kvctl: conflict: version mismatch (current version 5.0@n1, node n1)"}},
		{name: "cas --absent on an existing key", args: []string{"cas", "a", "x", "--absent", ep}, code: 4,
			stderrHas: []string{"kvctl: conflict: key exists (current version 5.0@n1"}},
		{name: "cas --absent on a new key", args: []string{"cas", "c", "x", "--absent", ep}},
		{name: "put --absent on an existing key", args: []string{"put", "c", "y", "--absent", ep}, code: 4,
			stderrHas: []string{"kvctl: conflict: key exists (current version 6.0@n1"}},
		{name: "put with both conditions", args: []string{"put", "c", "y", "--absent", "--version", "6.0@n1", ep}, code: 2},
		{name: "cas needs a condition", args: []string{"cas", "a", "x", ep}, code: 2,
			stderrHas: []string{"kvctl: kvctl cas needs exactly one of --version V or --absent"}},
		{name: "cas takes one condition", args: []string{"cas", "a", "x", "--absent", "--version", "1", ep}, code: 2},
		{name: "cas is strong only", args: []string{"cas", "a", "x", "--absent", "--consistency", "eventual", ep}, code: 2,
			stderrHas: []string{"kvctl: --version and --absent are strong only"}},
		{name: "put with a condition is strong only", args: []string{"put", "a", "x", "--version", "5.0@n1", "--consistency", "eventual", ep}, code: 2,
			stderrHas: []string{"kvctl: --version and --absent are strong only"}},
		{name: "del with a condition is strong only", args: []string{"del", "a", "--version", "5.0@n1", "--consistency", "eventual", ep}, code: 2,
			stderrHas: []string{"kvctl: --version and --absent are strong only"}},
		{name: "list", args: []string{"list", "--prefix", "b", ep}, stdout: ptr("b\tx\nbin\t\"\\xff\\x00raw\\n\"\n")},
		{name: "list cut at the limit", args: []string{"list", ep, "--limit", "1"}, stdout: ptr("a\tthree\n"),
			stderrHas: []string{"the list stops at 1 keys"}},
		{name: "list --json", args: []string{"list", "--prefix=c", "--json", ep},
			stdoutHas: []string{`{"items":[{"key":"c","value":"x","version":"6.0@n1"}],"more":false,"meta":{`}},
		{name: "del", args: []string{"del", "c", ep}, stdout: ptr("")},
		{name: "del again", args: []string{"del", "c", ep}, code: 3, stdout: ptr(""), stderrHas: []string{"kvctl: not_found:"}},
		{name: "del again --json", args: []string{"del", "c", ep, "--json"}, code: 3,
			stdoutHas: []string{`{"error":"nothing to delete","code":"not_found","meta":{`}, stderrHas: []string{"kvctl: not_found:"}},
		{name: "cas --json on a stale version", args: []string{"cas", "a", "x", "--version", "1.0@n1", ep, "--json"}, code: 4,
			stdoutHas: []string{`{"error":"version mismatch","code":"conflict","version":"5.0@n1","meta":{`}},
		// A level is read as servers read it (consistency.ParseRead/ParseWrite): case and
		// surrounding space do not matter, for kvctl's checks as for the client's.
		{name: "strong only whatever the case", args: []string{"put", "a", "x", "--absent", "--consistency", "EVENTUAL", ep}, code: 2,
			stderrHas: []string{"kvctl: --version and --absent are strong only"}},
		{name: "bounded whatever the case", args: []string{"get", "a", "--consistency", " Bounded", "--max-staleness", "2s", ep}, stdout: ptr("three")},
		{name: "max-staleness needs bounded", args: []string{"get", "a", "--max-staleness", "2s", ep}, code: 2,
			stderrHas: []string{"--max-staleness applies only to --consistency bounded"}},
		{name: "bounded read", args: []string{"get", "a", "--consistency", "bounded", "--max-staleness", "2s", ep}, stdout: ptr("three")},
		// The client sends only a positive bound: a negative one would quietly read at 1s.
		{name: "negative max-staleness", args: []string{"get", "a", "--consistency", "bounded", "--max-staleness", "-1s", ep}, code: 2,
			stderrHas: []string{"kvctl: --max-staleness must be positive, not -1s"}},
		{name: "list with a negative max-staleness", args: []string{"list", "--consistency", "bounded", "--max-staleness=-1s", ep}, code: 2,
			stderrHas: []string{"kvctl: --max-staleness must be positive"}},
		{name: "empty key", args: []string{"get", "", ep}, code: 2, stderrHas: []string{"kvctl: KEY must not be empty"}},
		{name: "put to an empty key", args: []string{"put", "", "v", ep}, code: 2, stderrHas: []string{"kvctl: KEY must not be empty"}},
		{name: "del of an empty key", args: []string{"del", "", ep}, code: 2, stderrHas: []string{"kvctl: KEY must not be empty"}},
		{name: "negative watch", args: []string{"status", "--watch", "-1s", ep}, code: 2, stdout: ptr(""),
			stderrHas: []string{"kvctl: --watch must be positive, not -1s"}},
		{name: "flag of another command", args: []string{"get", "a", "--purge", ep}, code: 2,
			stderrHas: []string{"kvctl get does not take --purge"}},
		{name: "too many arguments", args: []string{"get", "a", "b", ep}, code: 2, stderrHas: []string{"usage: kvctl get KEY"}},
		{name: "value starting with a dash after --", args: []string{"put", ep, "d", "--", "-1"}},
		{name: "and back", args: []string{"get", "d", ep}, stdout: ptr("-1")},
		{name: "unreachable endpoint", args: []string{"get", "a", "--endpoints", "127.0.0.1:1"}, code: 1,
			stderrHas: []string{"kvctl: GET 127.0.0.1:1: "}},
		{name: "bad endpoints", args: []string{"get", "a", "--endpoints", "http://x:1/path"}, code: 2,
			stderrHas: []string{"--endpoints"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kvctl(t, nil, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if tt.stdout != nil && r.stdout != *tt.stdout {
				t.Errorf("stdout = %q, want %q", r.stdout, *tt.stdout)
			}
			for _, s := range tt.stdoutHas {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout %q does not contain %q", r.stdout, s)
				}
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr %q does not contain %q", r.stderr, s)
				}
			}
			if tt.code != 0 && !slices.Contains(tt.args, "-v") {
				if lines := strings.Count(r.stderr, "\n"); lines != 1 || !strings.HasPrefix(r.stderr, "kvctl: ") {
					t.Errorf("an error must be one line \"kvctl: reason\" on stderr, got %q", r.stderr)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestJSONOutputIsOneObject: --json output parses as the documented shape.
func TestJSONOutputIsOneObject(t *testing.T) {
	f := newFakeCluster(t)
	mustKvctl(t, f.addr(), "put", "k", "v")
	r := mustKvctl(t, f.addr(), "get", "k", "--json")
	var got client.ValueResponse
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Error("more than one JSON value on stdout")
	}
	if got.Key != "k" || got.Value != "v" || got.Version != "1.0@n1" || got.Meta.Node != "n1" || got.Meta.AppliedIndex != 1 {
		t.Errorf("get --json = %+v", got)
	}
}

// TestKeysNotUTF8: such a key comes back from list (text and --json), get --json and put --json
// in a form that gives the key back, never as U+FFFD.
func TestKeysNotUTF8(t *testing.T) {
	f := newFakeCluster(t)
	const key = "\xff\xfe"
	r := mustKvctl(t, f.addr(), "put", key, "v", "--json")
	if !strings.Contains(r.stdout, `{"key":"","key_base64":"//4=","version":`) {
		t.Errorf("put --json: %s", r.stdout)
	}
	mustKvctl(t, f.addr(), "put", "\xffok", "w")
	r = mustKvctl(t, f.addr(), "list", "--prefix", "\xff", "--json")
	var page client.ListResponse
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || len(page.Items) != 2 {
		t.Fatalf("list --json: %v %s", err, r.stdout)
	}
	if got, err := page.Items[1].RawKey(); err != nil || got != key || strings.ContainsRune(r.stdout, utf8.RuneError) {
		t.Errorf("list --json: key %q (%v) from %s, want %q", got, err, r.stdout, key)
	}
	if r := mustKvctl(t, f.addr(), "list", "--prefix", "\xff"); r.stdout != `"\xffok"`+"\tw\n"+`"\xff\xfe"`+"\tv\n" {
		t.Errorf("list: %q", r.stdout)
	}
	r = mustKvctl(t, f.addr(), "get", key, "--json")
	if !strings.Contains(r.stdout, `{"key":"","key_base64":"//4=","value":"v",`) {
		t.Errorf("get --json: %s", r.stdout)
	}
	if r := mustKvctl(t, f.addr(), "get", key); r.stdout != "v" {
		t.Errorf("get: %q", r.stdout)
	}
}

// TestSessionFile: the token is read from the file before a request and written after, so
// successive kvctl runs share one session.
func TestSessionFile(t *testing.T) {
	f := newFakeCluster(t)
	file := filepath.Join(t.TempDir(), "session")

	mustKvctl(t, f.addr(), "put", "k", "v", "--session", file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("session file not written: %v", err)
	}
	if got := strings.TrimSpace(string(b)); got != "tok-1" {
		t.Fatalf("session file holds %q, want tok-1", got)
	}
	mustKvctl(t, f.addr(), "get", "k", "--session", file, "--consistency", "session")
	// A failed request's answer carries a token too.
	if r := kvctl(t, nil, "", "get", "missing", "--session", file, "--endpoints", f.addr()); r.code != exitNotFound {
		t.Fatalf("get missing: exit %d, want %d", r.code, exitNotFound)
	}
	mustKvctl(t, f.addr(), "get", "k") // no --session: sends none

	want := []string{"", "tok-1", "tok-2", ""}
	if got := f.sessions(); !slices.Equal(got, want) {
		t.Errorf("session headers sent = %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(file); strings.TrimSpace(string(b)) != "tok-3" {
		t.Errorf("session file holds %q, want tok-3", b)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("session file mode %v, want 0600", st.Mode().Perm())
	}
	// No temporary file is left behind, whether the run saved a new token or not.
	entries, _ := os.ReadDir(filepath.Dir(file))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"session", "session.lock"}; !slices.Equal(names, want) {
		t.Errorf("the session file's directory holds %q, want %q", names, want)
	}
}

// TestSessionFileThatCannotBeSaved: when the new token cannot be saved, kvctl says so before it
// sends anything. It used to send the request first: a write was applied, then kvctl exited 1
// ("saving session file: ..."), which a script reads as not done (and may repeat), and the
// session's later runs read the old token and could miss the write. Here the directory takes
// the file and its lock but not the temporary file kvctl writes the token to first (its name is
// longer than a directory entry may be), which running as root does not get around, unlike a
// read-only directory.
func TestSessionFileThatCannotBeSaved(t *testing.T) {
	f := newFakeCluster(t)
	file := filepath.Join(t.TempDir(), strings.Repeat("s", 245)) // FILE.lock fits in 255 bytes
	r := kvctl(t, nil, "", "put", "k", "v", "--session", file, "--endpoints", f.addr())
	if r.code != 1 || !strings.Contains(r.stderr, "session") {
		t.Errorf("kvctl put with a session file it cannot save: exit %d, stderr %q; want exit 1 naming the session file", r.code, r.stderr)
	}
	if got := f.sessions(); len(got) != 0 {
		t.Errorf("kvctl sent %d requests before finding it could not save the session, want none", len(got))
	}
}

// TestEmptyVersionIsRefused: a --version that expands to nothing (`--version "$V"`, V unset)
// must not become an unconditional write or delete of the value it was meant to protect.
func TestEmptyVersionIsRefused(t *testing.T) {
	f := newFakeCluster(t)
	mustKvctl(t, f.addr(), "put", "k", "keep")
	for _, args := range [][]string{
		{"put", "k", "lost", "--version", ""},
		{"put", "k", "lost", "--version="},
		{"cas", "k", "lost", "--version", "", "--absent"},
		{"del", "k", "--version", ""},
	} {
		r := kvctl(t, nil, "", append(args, "--endpoints", f.addr())...)
		if r.code != 2 || !strings.Contains(r.stderr, "--version must not be empty") {
			t.Errorf("kvctl %q: exit %d, stderr %q; want exit 2, --version must not be empty", args, r.code, r.stderr)
		}
	}
	if r := mustKvctl(t, f.addr(), "get", "k"); r.stdout != "keep" {
		t.Errorf("after the refused commands k = %q, want keep", r.stdout)
	}
}

// TestExitStatus: the exit status tells a script what happened without parsing stderr, as
// kvctl help and the README list: 3 not found, 4 a failed condition, 5 a write whose outcome is
// unknown (read the key to find out), 1 any other failure, 2 a mistake in the command line.
func TestExitStatus(t *testing.T) {
	f := newFakeCluster(t)
	mustKvctl(t, f.addr(), "put", "k", "v")
	arrived, release := f.hold("slow")
	defer release()
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"success", []string{"get", "k"}, 0},
		{"get of a missing key", []string{"get", "nope"}, 3},
		{"del of a missing key", []string{"del", "nope"}, 3},
		{"cas on another version", []string{"cas", "k", "w", "--version", "1.0@n9"}, 4},
		{"put --absent on an existing key", []string{"put", "k", "w", "--absent"}, 4},
		{"a write sent with no answer", []string{"put", "slow", "v", "--timeout", "100ms"}, 5},
		{"no server answered", []string{"get", "k", "--endpoints", "127.0.0.1:1"}, 1},
		{"usage", []string{"cas", "k", "w"}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if !slices.Contains(args, "--endpoints") {
				args = append(slices.Clone(args), "--endpoints", f.addr())
			}
			if r := kvctl(t, nil, "", args...); r.code != c.want {
				t.Errorf("exit %d, want %d; stderr %q", r.code, c.want, r.stderr)
			}
		})
	}
	select {
	case <-arrived:
	default:
		t.Error("the held write never reached the server: its case tested nothing")
	}
}

// TestSessionFileConcurrentRuns: two kvctl runs that share a session file take turns, so the
// one that finishes last leaves a token built on the other's (the server builds each answer's
// token on the request's). Writing back whichever answered last would drop the other run's
// write from the session.
func TestSessionFileConcurrentRuns(t *testing.T) {
	f := newFakeCluster(t)
	file := filepath.Join(t.TempDir(), "session")
	arrived, release := f.hold("slow")
	defer release()

	done := make(chan result, 2)
	go func() { done <- kvctl(t, nil, "", "put", "slow", "v", "--session", file, "--endpoints", f.addr()) }()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first run's request never reached the server")
	}
	go func() { done <- kvctl(t, nil, "", "put", "k", "v", "--session", file, "--endpoints", f.addr()) }()
	// The second run must wait for the first. Give it the time to get its request through if it
	// does not (a bounded wait for something that must not happen), then let the first finish.
	for deadline := time.Now().Add(300 * time.Millisecond); len(f.sessions()) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	release()
	for range 2 {
		if r := <-done; r.code != 0 {
			t.Fatalf("kvctl put: exit %d, stderr %q", r.code, r.stderr)
		}
	}
	if got, want := f.sessions(), []string{"", "tok-1"}; !slices.Equal(got, want) {
		t.Errorf("session headers sent = %q, want %q: the runs did not take turns", got, want)
	}
	if b, _ := os.ReadFile(file); strings.TrimSpace(string(b)) != "tok-2" {
		t.Errorf("session file holds %q, want tok-2 (built on both runs' requests)", b)
	}
}

func TestEndpointsFromEnvironment(t *testing.T) {
	f := newFakeCluster(t)
	env := map[string]string{"KV_ENDPOINTS": "127.0.0.1:1," + f.addr()}
	if r := kvctl(t, env, "", "put", "k", "v"); r.code != 0 {
		t.Fatalf("put with KV_ENDPOINTS: exit %d, %q", r.code, r.stderr)
	}
	// --endpoints wins over the environment.
	r := kvctl(t, env, "", "get", "k", "--endpoints", "127.0.0.1:1")
	if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("get with --endpoints: exit %d, stderr %q", r.code, r.stderr)
	}
	// Inside a kvd container (KV_HTTP, the node's own address), key commands talk to that node,
	// unless KV_ENDPOINTS or --endpoints say otherwise.
	container := map[string]string{"KV_HTTP": f.addr()}
	if r := kvctl(t, container, "", "get", "k"); r.code != 0 || r.stdout != "v" {
		t.Errorf("get with KV_HTTP: exit %d, stdout %q, stderr %q; want v from the node at KV_HTTP", r.code, r.stdout, r.stderr)
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
	}{
		{map[string]string{"KV_HTTP": f.addr(), "KV_ENDPOINTS": "127.0.0.1:1"}, []string{"get", "k"}},
		{container, []string{"get", "k", "--endpoints", "127.0.0.1:1"}},
	} {
		if r := kvctl(t, c.env, "", c.args...); r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") {
			t.Errorf("%v kvctl %q: exit %d, stderr %q; want a failure at 127.0.0.1:1", c.env, c.args, r.code, r.stderr)
		}
	}
	// A bad value is named by where the user put it.
	bad := map[string]string{"KV_ENDPOINTS": "foo"}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{bad, []string{"get", "k"}, `kvctl: KV_ENDPOINTS "foo": `},
		{bad, []string{"status"}, `kvctl: KV_ENDPOINTS "foo": `},
		{bad, []string{"bench", "put"}, `kvctl: KV_ENDPOINTS "foo": `},
		{map[string]string{"KV_ENDPOINTS": ","}, []string{"health"}, "kvctl: KV_ENDPOINTS is empty\n"},
		{map[string]string{"KV_ENDPOINTS": ","}, []string{"bench", "put"}, "kvctl: KV_ENDPOINTS is empty\n"},
		{map[string]string{"KV_HTTP": "foo"}, []string{"get", "k"}, `kvctl: KV_HTTP "foo": `},
		{env, []string{"get", "k", "--endpoints", "bar"}, `kvctl: --endpoints "bar": `},
		{env, []string{"--endpoints", "bar", "bench", "put"}, `kvctl: --endpoints "bar": `},
		{env, []string{"bench", "put", "--endpoints", "bar"}, `kvctl: --endpoints "bar": `},
		{nil, []string{"get", "k", "--endpoints", "bar"}, `kvctl: --endpoints "bar": `},
	} {
		r := kvctl(t, c.env, "", c.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, c.want) {
			t.Errorf("%v kvctl %q: exit %d, stderr %q; want 2 and %q", c.env, c.args, r.code, r.stderr, c.want)
		}
	}
}

func TestStatusCommand(t *testing.T) {
	f := newFakeCluster(t)
	r := mustKvctl(t, f.addr(), "status")
	for _, s := range []string{
		"leader: n1 (as seen by n1; term 2, commit index 9, applied index 9)",
		"ID  HTTP", "n1  " + f.addr(), "leader", "no contact for 12s", "GOSSIP", "suspect", "BACKLOG", "42",
		"purge: 3 deleted keys wait for n2 (watermark 2m0s old, down); if n2 is gone for good, remove it with kvctl member remove ID",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("status output lacks %q:\n%s", s, r.stdout)
		}
	}
	// n2 did not report (no term): its backlog is unknown, not the 0 the status carries.
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 8 && f[0] == "n2" && f[8] != "-" {
			t.Errorf("a member that did not report shows backlog %q, want -:\n%s", f[8], r.stdout)
		}
	}
	r = mustKvctl(t, f.addr(), "status", "--json")
	var st client.StatusResponse
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.Leader != "n1" || len(st.Nodes) != 2 || st.Nodes[1].Health != "down" {
		t.Errorf("status --json = %+v", st)
	}
}

// TestPurgeLine: the status names every member deleted keys wait for, and advises removing only
// those it shows down; a member that is up lags because of writes it holds, and stays.
func TestPurgeLine(t *testing.T) {
	nodes := []client.NodeStatus{
		{ID: "n1", Health: "ok", Gossip: "alive"},
		{ID: "n2", Health: "ok", Gossip: "alive"},
		{ID: "n3", Health: "down", Gossip: "dead"},
		{ID: "n4", Health: "ok", Gossip: "left"},
	}
	for _, c := range []struct {
		purge *client.PurgeStatus
		want  string
	}{
		{nil, ""},
		{&client.PurgeStatus{PendingTombstones: 2}, ""},
		{&client.PurgeStatus{PendingTombstones: 1, HeldBackBy: map[string]string{"n2": "40s"}},
			"purge: 1 deleted key waits for n2 (watermark 40s old); a member that is up reports once the writes it holds uncommitted are committed"},
		{&client.PurgeStatus{PendingTombstones: 5, BlockedBy: []string{"n4"}, HeldBackBy: map[string]string{"n2": "40s", "n3": "1m0s"}},
			"purge: 5 deleted keys wait for n4 (no report yet, down), n2 (watermark 40s old), n3 (watermark 1m0s old, down); if n4 or n3 is gone for good, remove it with kvctl member remove ID"},
		// Named on both lists: once, with both reasons (the last report is from before a removal).
		{&client.PurgeStatus{PendingTombstones: 1, BlockedBy: []string{"n3"}, HeldBackBy: map[string]string{"n3": "3m13s"}},
			"purge: 1 deleted key waits for n3 (no report since a member was removed, watermark 3m13s old, down); if n3 is gone for good, remove it with kvctl member remove ID"},
	} {
		if got := purgeLine(client.StatusResponse{Nodes: nodes, Purge: c.purge}); got != c.want {
			t.Errorf("purge %+v:\n got %q\nwant %q", c.purge, got, c.want)
		}
	}
}

// TestStatusWatchJSON: --watch with --json is a stream of JSON lines, one per refresh (the
// status, or the error body when a refresh fails), with no screen-clearing codes.
func TestStatusWatchJSON(t *testing.T) {
	f := newFakeCluster(t)
	for _, c := range []struct {
		endpoint string
		want     func(line string) bool
	}{
		{f.addr(), func(line string) bool {
			var st client.StatusResponse
			return json.Unmarshal([]byte(line), &st) == nil && st.Leader == "n1" && len(st.Nodes) == 2
		}},
		{"127.0.0.1:1", func(line string) bool {
			var eb client.ErrorBody
			return json.Unmarshal([]byte(line), &eb) == nil && strings.Contains(eb.Error, "127.0.0.1:1")
		}},
	} {
		var stdout syncbuf.Buffer
		var stderr bytes.Buffer
		ctx := interruptWhen(t, &stdout, func(s string) bool { return strings.Count(s, "\n") >= 2 })
		err := run(ctx, []string{"status", "--watch", "20ms", "--json", "--endpoints", c.endpoint, "--timeout", "50ms"},
			strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		if err != nil || len(lines) < 2 || strings.Contains(stdout.String(), "\x1b") {
			t.Errorf("%s: err %v, stdout %q; want two lines or more, no escape codes", c.endpoint, err, stdout.String())
		}
		for _, line := range lines {
			if !c.want(line) {
				t.Errorf("%s: line %q is not the JSON wanted", c.endpoint, line)
			}
		}
	}
}

func TestMemberRemove(t *testing.T) {
	f := newFakeCluster(t)
	r := mustKvctl(t, f.addr(), "member", "remove", "n2")
	if !strings.HasPrefix(r.stdout, "removed n2 from the cluster") {
		t.Errorf("member remove n2 printed %q", r.stdout)
	}
	r = kvctl(t, nil, "", "member", "remove", "n7", "--endpoints", f.addr())
	if r.code != exitNotFound || !strings.Contains(r.stderr, "n7 is not in the cluster") {
		t.Errorf("member remove n7: exit %d, stderr %q; want %d and the server's reason", r.code, r.stderr, exitNotFound)
	}
	for _, args := range [][]string{{"member"}, {"member", "remove"}, {"member", "remove", "a", "b"}} {
		if r := kvctl(t, nil, "", append(args, "--endpoints", f.addr())...); r.code != 2 {
			t.Errorf("kvctl %q: exit %d, want 2 (usage)", args, r.code)
		}
	}
}

func TestHelpAndUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdoutHas  string
		stderrHas  string
		stdoutNone bool
	}{
		{name: "help", args: []string{"help"}, stdoutHas: "Commands:\n  get KEY"},
		{name: "-h", args: []string{"-h"}, stdoutHas: "cluster up"},
		{name: "--help", args: []string{"--help"}, stdoutHas: "--consistency LEVEL"},
		{name: "help of a command", args: []string{"help", "get"}, stdoutHas: "Usage: kvctl get KEY"},
		{name: "help of a cluster command", args: []string{"help", "cluster", "restart"}, stdoutHas: "Usage: kvctl cluster restart NODE"},
		{name: "help of a command without arguments", args: []string{"help", "cluster", "down"}, stdoutHas: "Usage: kvctl cluster down\n"},
		{name: "-h after a command", args: []string{"put", "-h"}, stdoutHas: "Usage: kvctl put KEY VALUE"},
		{name: "help of nothing", args: []string{"help", "frob"}, code: 2, stderrHas: `kvctl: no command "frob"`, stdoutNone: true},
		{name: "no command", args: nil, code: 2, stderrHas: "kvctl: no command given", stdoutNone: true},
		{name: "unknown command", args: []string{"frob"}, code: 2, stderrHas: `kvctl: unknown command "frob" (kvctl help lists the commands)`, stdoutNone: true},
		{name: "another tool's name", args: []string{"delete", "k"}, code: 2, stderrHas: "did you mean kvctl del?", stdoutNone: true},
		{name: "cluster alone", args: []string{"cluster"}, code: 2,
			stderrHas: "kvctl cluster needs one of: up, down, kill, stop, restart, rejoin, partition, slow, skew, heal, status"},
		{name: "unknown cluster command", args: []string{"cluster", "frob"}, code: 2, stderrHas: `kvctl cluster has no command "frob"; it has: up,`},
		{name: "help of a group", args: []string{"help", "cluster"}, stdoutHas: "  cluster partition NODE"},
		{name: "help of member", args: []string{"help", "member"}, stdoutHas: "  member remove ID"},
		// The server lists every match unless asked for fewer: help must not promise a cap.
		{name: "help of list", args: []string{"help", "list"}, stdoutHas: "--limit N            list at most N keys (default: every key, read page by page)"},
		{name: "unknown flag", args: []string{"get", "k", "--frob"}, code: 2, stderrHas: "kvctl: unknown flag --frob (kvctl help get lists its flags)\n"},
		{name: "unknown one-letter flag", args: []string{"get", "k", "-x"}, code: 2, stderrHas: "kvctl: unknown flag -x (kvctl help get lists its flags)\n"},
		{name: "unknown flag before the command", args: []string{"--endpoints", "x", "--frob", "cluster", "up"}, code: 2,
			stderrHas: "kvctl: unknown flag --frob (kvctl help cluster up lists its flags)\n"},
		{name: "unknown flag alone", args: []string{"--frob"}, code: 2, stderrHas: "kvctl: unknown flag --frob (kvctl help lists the flags)\n"},
		{name: "unknown flag of bench", args: []string{"bench", "put", "--frob"}, code: 2, stderrHas: "kvctl: unknown flag --frob (kvctl bench -h lists its flags)\n"},
		// Flags before "bench" mean what they mean after it. -h there ran the load (at the
		// endpoints given, else the local cluster's), and a flag bench does not take was ignored.
		{name: "-h before bench", args: []string{"-h", "bench", "put", "--endpoints", "127.0.0.1:1", "--warmup", "0s", "--duration", "100ms"},
			stdoutHas: "Usage: kvctl bench put|get|mixed|spread"},
		{name: "--help before bench alone", args: []string{"--help", "bench"}, stdoutHas: "Usage: kvctl bench put|get|mixed|spread"},
		{name: "flag of another command before bench", args: []string{"--consistency", "eventual", "bench", "put", "--endpoints", "127.0.0.1:1"}, code: 2,
			stderrHas: "kvctl: kvctl bench does not take --consistency (see kvctl help bench)", stdoutNone: true},
		{name: "-v before bench", args: []string{"-v", "bench", "put", "--endpoints", "127.0.0.1:1"}, code: 2,
			stderrHas: "kvctl: kvctl bench does not take -v", stdoutNone: true},
		{name: "one-letter flag of another command", args: []string{"status", "-v"}, code: 2, stderrHas: "kvctl status does not take -v "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kvctl(t, nil, "", tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdoutHas) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdoutHas, r.stdout)
			}
			if !strings.Contains(r.stderr, tt.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderrHas, r.stderr)
			}
			if tt.stdoutNone && r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			// A mistake gets one line, as every error does, except a bare kvctl (the usage).
			if tt.code != 0 && tt.args != nil && strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", strings.Count(r.stderr, "\n"), r.stderr)
			}
		})
	}
}

// TestHelpListsEveryFlag keeps the help honest as flags are added: every flag must appear in
// the general help and be accepted by at least one command.
func TestHelpListsEveryFlag(t *testing.T) {
	r := kvctl(t, nil, "", "help")
	var o options
	fs := newFlagSet(&o, func(string) string { return "" })
	accepted := map[string]bool{"h": true, "help": true}
	for _, c := range commands() {
		for _, f := range c.flags {
			if fs.Lookup(f) == nil {
				t.Errorf("command %q lists undefined flag %q", c.name, f)
			}
			accepted[f] = true
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "h" || f.Name == "help" {
			return
		}
		dashes := "--"
		if len(f.Name) == 1 {
			dashes = "-"
		}
		if !strings.Contains(r.stdout, "  "+dashes+f.Name+" ") {
			t.Errorf("help does not list %s%s", dashes, f.Name)
		}
		if !accepted[f.Name] {
			t.Errorf("no command accepts --%s", f.Name)
		}
	})
}

// kvctl member remove waits removalTimeout unless --timeout is given, whatever its value: the
// default of the other commands too.
func TestMemberRemoveTimeout(t *testing.T) {
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{nil, removalTimeout},
		{[]string{"--timeout", "30s"}, 30 * time.Second},
		{[]string{"--timeout", defaultTimeout.String()}, defaultTimeout},
	} {
		var o options
		fs := newFlagSet(&o, func(string) string { return "" })
		if _, err := parseInterspersed(fs, append([]string{"member", "remove", "n3"}, c.args...)); err != nil {
			t.Fatal(err)
		}
		o.given = visited(fs)
		if got := memberRemoveTimeout(&o); got != c.want {
			t.Errorf("%q: timeout %v, want %v", c.args, got, c.want)
		}
	}
}
