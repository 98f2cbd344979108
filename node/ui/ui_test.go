package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The page at /ui/ and each asset under it, with the content type a browser needs to run it
// (nosniff is set, so a wrong type would stop the script); anything else under /ui/ is a 404.
func TestHandlerServesPageAndAssets(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", `src="app.js"`},
		{"/ui/index.html", "text/html; charset=utf-8", `<html lang="en">`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "/v1/status"},
		{"/ui/style.css", "text/css; charset=utf-8", ".node"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("ETag") == "" {
				t.Errorf("headers %v: want nosniff and an ETag", resp.Header)
			}
			if b := body(t, resp); !strings.Contains(b, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
		})
	}
	for _, path := range []string{"/ui/nope.js", "/ui/static/app.js", "/ui/../ui/app.js", "/ui", "/app.js", "/ui/app.js/"} {
		t.Run("404 "+path, func(t *testing.T) {
			if resp := get(t, h, http.MethodGet, path); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
			}
		})
	}
}

func TestHandlerConditionalAndHead(t *testing.T) {
	h := Handler()
	first := get(t, h, http.MethodGet, "/ui/app.js")
	etag := first.Header.Get("ETag")
	if resp := get(t, h, http.MethodGet, "/ui/app.js", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag: status %d, want 304", resp.StatusCode)
	}
	head := get(t, h, http.MethodHead, "/ui/")
	if head.StatusCode != http.StatusOK || body(t, head) != "" {
		t.Errorf("HEAD /ui/: status %d, want 200 and no body", head.StatusCode)
	}
	if csp := get(t, h, http.MethodGet, "/ui/").Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("page CSP %q does not restrict scripts to the node", csp)
	}
}

// absoluteURL finds scheme-qualified and protocol-relative URLs in quotes, attributes and CSS.
var absoluteURL = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|https?://`)

// allowedURLs are identifiers that look like URLs but are never fetched.
var allowedURLs = []string{"http://www.w3.org/2000/svg"}

// The page must work on a machine without internet access and must not leak that someone opened
// it: no asset may name an outside URL (members are reached through addresses built from
// /v1/status and location.protocol at run time).
func TestAssetsFetchNothingFromOutside(t *testing.T) {
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(b)
		for _, ok := range allowedURLs {
			text = strings.ReplaceAll(text, ok, "")
		}
		for _, line := range strings.Split(text, "\n") {
			if absoluteURL.MatchString(line) {
				t.Errorf("%s: absolute URL in %q", p, strings.TrimSpace(line))
			}
			if strings.Contains(line, "@import") || strings.Contains(line, "@font-face") {
				t.Errorf("%s: imports or fonts in %q", p, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The test ids the browser tests (and anyone scripting the page) rely on stay in the page.
func TestPageKeepsTestIDs(t *testing.T) {
	page := body(t, get(t, Handler(), http.MethodGet, "/ui/"))
	script := body(t, get(t, Handler(), http.MethodGet, "/ui/app.js"))
	for _, id := range []string{"cluster", "banner", "last-update", "ops-rate", "ops-window", "errors-rate", "p99-now",
		"backlog-total", "commit-lag-now", "leader", "term", "commit-index", "levels", "chart-backlog", "chart-commit-lag"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("page has no element with id %q", id)
		}
	}
	for _, attr := range []string{"'data-node'", "'data-role'", "'data-health'", "'data-stats'", "'data-level'"} {
		if !strings.Contains(script, attr) {
			t.Errorf("app.js never sets %s", attr)
		}
	}
}
