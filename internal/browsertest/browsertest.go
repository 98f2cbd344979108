// Package browsertest drives a headless Chromium for the dashboard's browser tests: node/ui's
// (fake nodes) and systemtest's (real ones). Test helpers cannot be shared between two test
// packages, so they live here; nothing outside tests imports this package.
package browsertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Find returns Debian's headless-capable Chromium, or skips t when it is not installed.
func Find(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("browser test: no chromium or chromium-browser in PATH (apt-get install chromium to run it)")
	return ""
}

// Load loads url in headless Chromium, lets the page run for budget of virtual time (waits for
// the network do not count against it), and returns the DOM, or, with a screenshot path,
// writes a screenshot there instead.
func Load(t testing.TB, browser, url string, budget time.Duration, screenshot string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-extensions", "--mute-audio",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars", "--window-size=1280,900",
		"--virtual-time-budget=" + strconv.Itoa(int(budget/time.Millisecond))}
	if screenshot != "" {
		args = append(args, "--screenshot="+screenshot)
	} else {
		args = append(args, "--dump-dom")
	}
	cmd := exec.CommandContext(ctx, browser, append(args, url)...)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS=disabled:")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg = string(ee.Stderr)
		}
		t.Fatalf("chromium %s: %v\n%s", url, err, msg)
	}
	return string(out)
}

var (
	tagRE  = regexp.MustCompile(`<[a-z][^>]*>`)
	attrRE = regexp.MustCompile(`([a-z][a-z0-9-]*)(?:="([^"]*)")?`)
)

// Elements returns the attributes of every start tag in dom that has attribute key (any value).
func Elements(dom, key string) []map[string]string {
	var out []map[string]string
	for _, tag := range tagRE.FindAllString(dom, -1) {
		attrs := map[string]string{}
		for _, m := range attrRE.FindAllStringSubmatch(tag, -1) {
			attrs[m[1]] = m[2]
		}
		if _, ok := attrs[key]; ok {
			out = append(out, attrs)
		}
	}
	return out
}
