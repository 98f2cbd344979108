// Package ui serves the dialkv dashboard: one static page, embedded in the binary, that a browser
// loads from any node at /ui/. The page polls that node's GET /v1/status every second and every
// member's GET /v1/stats (cross-origin, which is why those two endpoints answer with
// Access-Control-Allow-Origin: *), and draws the cluster map and per-level charts itself.
//
// The package only serves files: it knows nothing of Raft, gossip or the store, fetches nothing
// from outside the cluster (no CDNs, no web fonts; a test checks every asset for absolute URLs),
// and has no build step: the files under static/ are what the browser runs.
package ui
