package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeHealth serves /v1/health/ready with the given status and body.
func fakeHealth(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/health/ready" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestHealth(t *testing.T) {
	ready := fakeHealth(t, 200, `{"status":"ok","node":"n1"}`)
	unready := fakeHealth(t, 503, `{"status":"degraded","reason":"no leader for 3s","node":"n2"}`)
	tests := []struct {
		name      string
		endpoints string
		code      int
		stdout    []string
		stderr    []string
	}{
		{"one ready", ready, 0, []string{ready + "\tready\tn1"}, nil},
		{"one unready names the reason", unready, 1, nil, []string{"not ready", unready, "degraded: no leader for 3s"}},
		{"every endpoint must be ready", ready + "," + unready, 1, []string{"n1"}, []string{unready}},
		{"not answering", "127.0.0.1:1", 1, nil, []string{"127.0.0.1:1: not answering"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kvctl(t, nil, "", "health", "--endpoints", tc.endpoints, "--timeout", "2s")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout %q lacks %q", r.stdout, s)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr %q lacks %q", r.stderr, s)
				}
			}
		})
	}
	// In a kvd container, the image's HEALTHCHECK runs plain `kvctl health`: the node asked is
	// its own, KV_HTTP, unless KV_ENDPOINTS or --endpoints name others.
	for _, c := range []struct {
		env  map[string]string
		args []string
		code int
	}{
		{map[string]string{"KV_HTTP": ready}, nil, 0},
		{map[string]string{"KV_HTTP": unready}, nil, 1},
		{map[string]string{"KV_HTTP": unready, "KV_ENDPOINTS": ready}, nil, 0},
		{map[string]string{"KV_HTTP": unready}, []string{"--endpoints", ready}, 0},
	} {
		if r := kvctl(t, c.env, "", append([]string{"health", "--timeout", "2s"}, c.args...)...); r.code != c.code {
			t.Errorf("%v kvctl health %q: exit %d, want %d (stderr %q)", c.env, c.args, r.code, c.code, r.stderr)
		}
	}
	if r := kvctl(t, nil, "", "health", "extra"); r.code != 2 {
		t.Errorf("an argument: exit %d, want 2", r.code)
	}
}
