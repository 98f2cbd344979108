package fault

import (
	"net"
	"net/http"
)

// FromHeader names the node that sent a node-to-node HTTP request, so the receiver can drop
// traffic from a cut peer.
const FromHeader = "Dialkv-From"

// RoundTripper carries node-to-node HTTP requests through the fault hook: it stamps the sender,
// refuses requests to cut peers as if the connection failed (so callers know nothing was sent),
// and delays the rest.
type RoundTripper struct {
	Base   http.RoundTripper
	Self   string
	Faults *Injector
	// IDOf maps a request's host:port to the node id listening there ("" when unknown).
	IDOf func(hostport string) string
}

func (rt *RoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(FromHeader, rt.Self)
	if rt.Faults.DropOut(rt.IDOf(req.URL.Host)) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ErrPartitioned}
	}
	rt.Faults.Wait()
	base := rt.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}

// Middleware drops requests from cut peers on arrival with 503 and the dialkv error body.
func Middleware(faults *Injector, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if from := r.Header.Get(FromHeader); from != "" && faults.DropIn(from) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"fault injection: the link from ` + from + ` is cut","code":"unavailable"}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
