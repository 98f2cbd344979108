package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// newClient builds the client the key and status commands use, from --endpoints and --timeout.
func newClient(o *options) (*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Endpoints = splitEndpoints(o.endpoints)
	if o.timeout <= 0 {
		return nil, usageErrorf("--timeout must be positive")
	}
	cfg.Timeout = o.timeout
	cl, err := client.New(cfg)
	if err != nil {
		return nil, usageErrorf("%s %q: %v", o.endpointsSource(), o.endpoints, err)
	}
	return cl, nil
}

// withSession runs fn with the session kept in --session FILE, if one was given: the token is
// read before and written back after, also when fn failed (an error answer can carry a newer
// token). Without --session, fn gets a nil session.
//
// Runs that share FILE take turns (a lock on FILE.lock from reading the token to writing it
// back): a server builds each answer's token on the one the request sent, so two runs that both
// read the same token would each write back a token missing the other's request, and the one
// that finished last would erase the other's write from the session (the next session read
// could miss it).
//
// The file the new token goes into is made before fn sends anything: a directory that takes no
// new file fails the run with nothing done. Made after, it failed a run whose write was applied
// (exit 1, which a script reads as not done), and the session's later runs missed that write.
func withSession(ctx context.Context, o *options, fn func(*client.Session) error) error {
	if o.session == "" {
		return fn(nil)
	}
	unlock, err := lockFile(ctx, o.session+".lock")
	if err != nil {
		return fmt.Errorf("locking the session file: %w", err)
	}
	defer unlock()
	before, err := readSessionFile(o.session)
	if err != nil {
		return err
	}
	next, err := newAtomicFile(o.session)
	if err != nil {
		return fmt.Errorf("the session file cannot be saved, so nothing was sent: %w", err)
	}
	defer next.discard()
	sess := client.NewSession(before)
	err = fn(sess)
	if after := sess.Token(); after != before && after != "" {
		if serr := next.commit([]byte(after+"\n"), 0o600); serr != nil {
			serr = fmt.Errorf("saving session file (the request itself was answered; the session's next runs will not know of it): %w", serr)
			if err != nil {
				return fmt.Errorf("%w (and %v)", err, serr)
			}
			return serr
		}
	}
	return err
}

// readSessionFile returns the token kept in path; a missing file is a new, empty session.
func readSessionFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading session file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeFileAtomic writes data to a temporary file next to path and renames it over path
// (atomicFile), so a crash or a concurrent kvctl never leaves half of it behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := newAtomicFile(path)
	if err != nil {
		return err
	}
	defer f.discard()
	return f.commit(data, perm)
}

// atomicFile is the temporary file next to path that commit renames over it.
type atomicFile struct {
	path string
	f    *os.File // nil once committed
}

// newAtomicFile creates the temporary file that will replace path.
func newAtomicFile(path string) (*atomicFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return nil, err
	}
	return &atomicFile{path: path, f: f}, nil
}

// commit writes data to the temporary file and renames it over path. The data is synced before
// the rename and the directory after it: without the first, a machine that crashes soon after
// can come back with path renamed but empty (delayed allocation), which a session file would
// read as a new, empty session; without the second, with the old contents.
func (a *atomicFile) commit(data []byte, perm os.FileMode) error {
	f := a.f
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), a.path)
	}
	if err != nil {
		return err // discard removes the temporary file
	}
	a.f = nil
	// Best effort: the new contents are in place either way, and not every system can sync a
	// directory.
	if d, err := os.Open(filepath.Dir(a.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// discard removes the temporary file unless commit put it in place.
func (a *atomicFile) discard() {
	if a.f != nil {
		a.f.Close()
		os.Remove(a.f.Name())
		a.f = nil
	}
}

// checkStaleness rejects a --max-staleness that the read would not honour: the client sends
// only a positive bound, so a negative one would silently become the server's default.
func checkStaleness(o *options) error {
	if o.maxStaleness != 0 && !levelIs(o.consistency, consistency.Bounded) {
		return usageErrorf("--max-staleness applies only to --consistency bounded")
	}
	if o.maxStaleness < 0 {
		return usageErrorf("--max-staleness must be positive, not %v", o.maxStaleness)
	}
	return nil
}

// levelIs reports whether a --consistency value names level as the servers and the client read
// it (consistency.ParseRead: case and surrounding space do not matter), so that kvctl's checks
// judge the level the request will have.
func levelIs(given string, level consistency.Level) bool {
	l, err := consistency.ParseRead(given)
	return err == nil && l == level
}

// checkKey rejects an empty KEY as a mistake in the command line (`kvctl get "$UNSET"`), before
// the client reports it in its own terms.
func checkKey(key string) error {
	if key == "" {
		return usageErrorf("KEY must not be empty")
	}
	return nil
}

func runGet(ctx context.Context, inv *invocation) error {
	o := inv.opts
	if err := checkStaleness(o); err != nil {
		return err
	}
	key := inv.args[0]
	if err := checkKey(key); err != nil {
		return err
	}
	cl, err := newClient(o)
	if err != nil {
		return err
	}
	var value []byte
	var meta client.Meta
	err = withSession(ctx, o, func(s *client.Session) error {
		var err error
		value, meta, err = cl.Get(ctx, key, client.GetOptions{Consistency: o.consistency, MaxStaleness: o.maxStaleness, Session: s})
		return err
	})
	if o.verbose && meta.Node != "" {
		writeMeta(inv.stderr, meta)
	}
	if err != nil {
		return failJSON(inv, err, meta)
	}
	if o.json {
		kv := client.NewKV(key, value)
		kv.Version, kv.State = meta.Version, meta.State
		return writeJSON(inv.stdout, client.ValueResponse{KV: kv, Meta: meta})
	}
	if _, err := inv.stdout.Write(value); err != nil {
		return err
	}
	// The value's bytes go out exactly as stored, so `kvctl get k > file` round-trips; only a
	// human at a terminal gets a newline so the prompt does not follow the value.
	if isTerminal(inv.stdout) && (len(value) == 0 || value[len(value)-1] != '\n') {
		_, err = io.WriteString(inv.stdout, "\n")
	}
	return err
}

// checkVersion rejects a --version given empty (`kvctl put k v --version "$V"` with V unset or
// a failed lookup): the client takes an empty version for none, so the write would go ahead
// unconditionally and overwrite the value the condition was there to protect.
func checkVersion(o *options) error {
	if o.given["version"] && o.version == "" {
		return usageErrorf("--version must not be empty (leave it out for an unconditional write)")
	}
	return nil
}

// checkStrongCondition rejects a condition with --consistency eventual, which no server takes
// (a condition needs the single order of writes only Raft gives): a mistake in the command line,
// reported as one (exit 2) before anything is sent.
func checkStrongCondition(o *options) error {
	if (o.version != "" || o.absent) && levelIs(o.consistency, consistency.Eventual) {
		return usageErrorf("--version and --absent are strong only: leave out --consistency eventual")
	}
	return nil
}

func runPut(ctx context.Context, inv *invocation) error {
	o := inv.opts
	if err := checkVersion(o); err != nil {
		return err
	}
	if err := checkStrongCondition(o); err != nil {
		return err
	}
	if o.version != "" && o.absent {
		return usageErrorf("--version and --absent exclude each other")
	}
	return put(ctx, inv, client.PutOptions{IfVersion: o.version, IfAbsent: o.absent})
}

func runCAS(ctx context.Context, inv *invocation) error {
	o := inv.opts
	if err := checkVersion(o); err != nil {
		return err
	}
	if err := checkStrongCondition(o); err != nil {
		return err
	}
	if (o.version == "") == !o.absent {
		return usageErrorf("kvctl cas needs exactly one of --version V or --absent")
	}
	return put(ctx, inv, client.PutOptions{IfVersion: o.version, IfAbsent: o.absent})
}

// put writes KEY VALUE (VALUE "-": stdin) with the conditions in opts.
func put(ctx context.Context, inv *invocation, opts client.PutOptions) error {
	o := inv.opts
	key := inv.args[0]
	if err := checkKey(key); err != nil {
		return err
	}
	cl, err := newClient(o)
	if err != nil {
		return err
	}
	value := []byte(inv.args[1])
	if inv.args[1] == "-" {
		if value, err = io.ReadAll(inv.stdin); err != nil {
			return fmt.Errorf("reading the value from stdin: %w", err)
		}
	}
	opts.Consistency = o.consistency
	var meta client.Meta
	err = withSession(ctx, o, func(s *client.Session) error {
		opts.Session = s
		var err error
		meta, err = cl.Put(ctx, key, value, opts)
		return err
	})
	return reportWrite(inv, key, meta, err)
}

func runDel(ctx context.Context, inv *invocation) error {
	o := inv.opts
	if err := checkVersion(o); err != nil {
		return err
	}
	if err := checkStrongCondition(o); err != nil {
		return err
	}
	key := inv.args[0]
	if err := checkKey(key); err != nil {
		return err
	}
	cl, err := newClient(o)
	if err != nil {
		return err
	}
	var meta client.Meta
	err = withSession(ctx, o, func(s *client.Session) error {
		var err error
		meta, err = cl.Delete(ctx, key, client.DeleteOptions{Consistency: o.consistency, IfVersion: o.version, Session: s})
		return err
	})
	return reportWrite(inv, key, meta, err)
}

// writeResult is what --json prints for a write: the key (in key_base64 when it is not valid
// UTF-8, as in the server's answers), the version it got, the metadata.
type writeResult struct {
	Key       string      `json:"key"`
	KeyBase64 string      `json:"key_base64,omitempty"`
	Version   string      `json:"version,omitempty"`
	Meta      client.Meta `json:"meta"`
}

// reportWrite prints a write's outcome: nothing on success unless -v (metadata on stderr) or
// --json (metadata on stdout).
func reportWrite(inv *invocation, key string, meta client.Meta, err error) error {
	if inv.opts.verbose && meta.Node != "" {
		writeMeta(inv.stderr, meta)
	}
	if err != nil {
		return failJSON(inv, err, meta)
	}
	if inv.opts.json {
		kv := client.NewKV(key, nil)
		return writeJSON(inv.stdout, writeResult{Key: kv.Key, KeyBase64: kv.KeyBase64, Version: meta.Version, Meta: meta})
	}
	return nil
}

// runList prints the keys page by page as they come (client.ListPages), so memory holds one
// page however long the list; --limit is the total printed.
func runList(ctx context.Context, inv *invocation) error {
	o := inv.opts
	if err := checkStaleness(o); err != nil {
		return err
	}
	if o.limit < 0 {
		return usageErrorf("--limit must not be negative")
	}
	cl, err := newClient(o)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(inv.stdout)
	var printItems func([]client.KV) error
	var doc *jsonList
	if o.json {
		doc = &jsonList{w: out}
		printItems = doc.items
	} else {
		printItems = func(items []client.KV) error { return writeListLines(out, items) }
	}
	var last *client.ListResponse
	var meta client.Meta
	printed := 0
	err = withSession(ctx, o, func(s *client.Session) error {
		var err error
		meta, err = cl.ListPages(ctx, o.prefix, client.ListOptions{
			Consistency: o.consistency, MaxStaleness: o.maxStaleness, Limit: o.limit, After: o.after, Session: s,
		}, func(page *client.ListResponse) error {
			last = page
			if err := printItems(page.Items); err != nil {
				return err
			}
			printed += len(page.Items)
			// Each page reaches the reader as it comes.
			return out.Flush()
		})
		return err
	})
	if o.verbose && meta.Node != "" {
		writeMeta(inv.stderr, meta)
	}
	if err != nil {
		if printed == 0 {
			return failJSON(inv, err, meta)
		}
		// Keys are printed already: say where the list stopped, so it can go on from there
		// (--json: in the one document, with the error).
		if doc != nil {
			doc.fail(err, meta)
			out.Flush()
		}
		return fmt.Errorf("%w (the list stopped after %d keys: go on with --after and the last key printed)", err, printed)
	}
	if doc != nil {
		if err := doc.end(last, meta); err != nil {
			return err
		}
		return out.Flush()
	}
	if last != nil && last.More {
		// Not an error (the keys printed are right), but the reader must know there are more.
		fmt.Fprintf(inv.stderr, "kvctl: note: the list stops at %d keys (--limit); more follow: go on with --after and the last key printed\n", printed)
	}
	return nil
}

// writeListLines prints items as key<TAB>value lines.
func writeListLines(w io.Writer, items []client.KV) error {
	for _, kv := range items {
		key, err := kv.RawKey()
		if err != nil {
			return err
		}
		value, err := kv.Bytes()
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\t%s\n", listField(key), listField(string(value))); err != nil {
			return err
		}
	}
	return nil
}

// jsonList prints a list with --json as one document shaped like one answer of GET /v1/kv,
// {"items":[...],"more":...,"next":...,"meta":{...}}, writing the items as pages come. more and
// next are the last page's: set when --limit stopped the list before its end. A list that
// fails after printing keys ends the document with the error ({"error","code"}), more set and
// next the last key printed.
type jsonList struct {
	w       io.Writer
	printed int
	lastKey string
}

// listTail is what follows the items in jsonList's document.
type listTail struct {
	More       bool   `json:"more"`
	Next       string `json:"next,omitempty"`
	NextBase64 string `json:"next_base64,omitempty"`
	*client.ErrorBody
	Meta *client.Meta `json:"meta,omitempty"`
}

func (j *jsonList) items(items []client.KV) error {
	for _, kv := range items {
		b, err := marshalJSON(kv)
		if err != nil {
			return err
		}
		sep := ","
		if j.printed == 0 {
			sep = `{"items":[`
		}
		if _, err := fmt.Fprintf(j.w, "%s%s", sep, b); err != nil {
			return err
		}
		j.printed++
		if j.lastKey, err = kv.RawKey(); err != nil {
			return err
		}
	}
	return nil
}

func (j *jsonList) end(last *client.ListResponse, meta client.Meta) error {
	tail := listTail{}
	if last != nil {
		tail.More, tail.Next, tail.NextBase64 = last.More, last.Next, last.NextBase64
	}
	return j.close(tail, meta)
}

func (j *jsonList) fail(err error, meta client.Meta) error {
	next := client.NewKV(j.lastKey, nil)
	body := errorBody(err)
	return j.close(listTail{More: true, Next: next.Key, NextBase64: next.KeyBase64, ErrorBody: &body}, meta)
}

func (j *jsonList) close(tail listTail, meta client.Meta) error {
	if meta.Node != "" {
		tail.Meta = &meta
	}
	b, err := marshalJSON(tail)
	if err != nil {
		return err
	}
	head := "],"
	if j.printed == 0 {
		head = `{"items":[],`
	}
	// b is {"more":...}: the tail's fields go on the items' object.
	_, err = fmt.Fprintf(j.w, "%s%s\n", head, b[1:])
	return err
}

// marshalJSON is v as writeJSON prints it (no HTML escaping), without the newline.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// listField keeps one key<TAB>value line per key: text that would break the line format (tabs,
// newlines, control bytes, invalid UTF-8, or a leading quote) is printed Go-quoted instead.
func listField(s string) string {
	if !utf8.ValidString(s) || strings.HasPrefix(s, `"`) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}

// writeMeta prints the metadata of an answer as "name: value" lines (for -v, on stderr).
func writeMeta(w io.Writer, m client.Meta) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	line := func(name, value string) {
		if value != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", name, value)
		}
	}
	line("consistency", m.Consistency)
	line("node", m.Node)
	line("via", m.Via)
	line("leader", m.Leader)
	line("version", m.Version)
	if m.AppliedIndex != 0 { // 0: the answer carried none
		line("applied index", strconv.FormatUint(m.AppliedIndex, 10))
	}
	line("state", m.State)
	line("staleness", m.Staleness)
	line("session", m.Session)
	tw.Flush()
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// errorResult is what --json prints for a failed key command: the error body, and the
// metadata of the answer when a node answered (a 404 says which node found nothing, and at
// which applied index).
type errorResult struct {
	client.ErrorBody
	Meta *client.Meta `json:"meta,omitempty"`
}

// failJSON returns err, having printed it on stdout as an errorResult when --json asks for JSON
// there: a script reading stdout gets a document on failure too. The exit status and the line
// on stderr stay as for any error.
func failJSON(inv *invocation, err error, meta client.Meta) error {
	if !inv.opts.json {
		return err
	}
	res := errorResult{ErrorBody: errorBody(err)}
	if meta.Node != "" {
		res.Meta = &meta
	}
	writeJSON(inv.stdout, res)
	return err
}

// codeTransport is the code --json gives a failure no server answered (client.ErrNoAnswer): no
// server sends it, so it cannot be taken for one of theirs.
const codeTransport = "transport"

// errorBody is err as the JSON error body of docs/http-api.md, for --json output: the server's
// message and code when a server answered (or the client's outcome_unknown), code transport when
// none did, else kvctl's own message and no code.
func errorBody(err error) client.ErrorBody {
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.Code != "":
		body := client.ErrorBody{Error: ce.Message, Code: ce.Code, Version: ce.Version}
		if body.Error == "" {
			body.Error = err.Error()
		}
		return body
	case errors.Is(err, client.ErrNoAnswer):
		return client.ErrorBody{Error: err.Error(), Code: codeTransport}
	}
	return client.ErrorBody{Error: err.Error()}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
