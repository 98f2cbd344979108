package node

import "time"

// idleTimeout closes a keep-alive connection with no request for this long. The server used to
// set ReadHeaderTimeout only, which does not apply between requests: a client that kept a
// connection open after its answer (a pool without an idle timeout, a process that leaked it)
// held it and the goroutine serving it for as long as it liked. It is longer than the 90s after
// which the nodes' own peer clients, the gossip client and package client close theirs: the
// client side always closes first, so the server never closes a connection as a client sends a
// request on it (a POST the Go client cannot safely send again, which a forwarding node would
// have to report as outcome_unknown).
const idleTimeout = 2 * time.Minute
