package client

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of DefaultConfig.
const (
	// DefaultTimeout bounds one attempt against one endpoint. It is longer than the server's
	// leader wait (5s) so that a no_leader answer arrives before the client gives up.
	DefaultTimeout = 10 * time.Second
	// DefaultDialTimeout bounds connecting to one endpoint. It is much shorter than
	// DefaultTimeout so that an unreachable node (packets dropped, not refused) costs little
	// before the client fails over to the next one.
	DefaultDialTimeout = 3 * time.Second
)

// Config configures a Client. Start from DefaultConfig.
type Config struct {
	// Endpoints are the nodes' HTTP addresses, "host:port" with an optional "http://" or
	// "https://" scheme. The client starts with the first and fails over in order; later calls
	// start at the endpoint that answered last, unless PreferFirst is set.
	Endpoints []string
	// PreferFirst makes every call start at the first endpoint and fail over in order from
	// there, instead of starting at the endpoint that last answered. For a caller that wants
	// its own node whenever it is up (an application next to a node, reading the eventual
	// writes it made there; a test that chooses the node each request reaches), as a client
	// pinned to one node would, but with failover. The price: while the first endpoint is
	// down, every call pays a failed attempt on it (bounded by DialTimeout) before moving on.
	PreferFirst bool
	// Timeout bounds each attempt against one endpoint (not the whole call: bound that with the
	// context). Zero means DefaultTimeout.
	Timeout time.Duration
	// DialTimeout bounds connecting to one endpoint when the client builds its own HTTP client.
	// Zero means DefaultDialTimeout; it is capped at Timeout. Ignored when HTTPClient is set.
	DialTimeout time.Duration
	// HTTPClient, when set, is used for every request. Its Timeout should be zero (the client
	// applies Timeout per attempt). If its Transport is not an *http.Transport the client cannot
	// tell whether a failed write reached a server, so it fails over only on dial errors.
	HTTPClient *http.Client
}

// DefaultConfig returns a configuration for a local three-node cluster (the one
// `kvctl cluster up` starts) with the default timeouts.
func DefaultConfig() Config {
	return Config{
		Endpoints:   []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
		Timeout:     DefaultTimeout,
		DialTimeout: DefaultDialTimeout,
	}
}

// Validate reports the first problem with the configuration.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("client: no endpoints")
	}
	seen := make(map[string]bool, len(c.Endpoints))
	for _, e := range c.Endpoints {
		base, err := endpointURL(e)
		if err != nil {
			return err
		}
		if seen[base] {
			return fmt.Errorf("client: endpoint %q listed twice", e)
		}
		seen[base] = true
	}
	if c.Timeout < 0 {
		return fmt.Errorf("client: negative timeout %v", c.Timeout)
	}
	if c.DialTimeout < 0 {
		return fmt.Errorf("client: negative dial timeout %v", c.DialTimeout)
	}
	return nil
}

// endpointURL turns "host:port" or "http://host:port/" into the base URL "http://host:port".
func endpointURL(endpoint string) (string, error) {
	e := strings.TrimSpace(endpoint)
	if e == "" {
		return "", errors.New("client: empty endpoint")
	}
	if !strings.Contains(e, "://") {
		e = "http://" + e
	}
	u, err := url.Parse(e)
	if err != nil {
		return "", fmt.Errorf("client: endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("client: endpoint %q: scheme must be http or https", endpoint)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("client: endpoint %q: want host:port without path, query or user", endpoint)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return "", fmt.Errorf("client: endpoint %q: want host:port", endpoint)
	}
	return u.Scheme + "://" + u.Host, nil
}

// newHTTPClient builds the default HTTP client: keep-alive connections, enough idle ones per
// node for a busy caller (the partition harness runs many goroutines on one Client), and a
// short dial timeout so failover is quick.
func newHTTPClient(dialTimeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	// The environment's proxy settings must not capture traffic to cluster nodes.
	t.Proxy = nil
	return &http.Client{
		Transport: t,
		// The API never redirects; following one would re-send a write somewhere unexpected.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
