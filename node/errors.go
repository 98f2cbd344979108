package node

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/fault"
)

var (
	// errNoRoute: no endpoint has the request's path.
	errNoRoute = errors.New("no such endpoint")
	// errMethodNotAllowed: endpoints have the request's path, but not for its method.
	errMethodNotAllowed = errors.New("method not allowed")
	// errClockSkew refuses a session's write that would be stamped no newer than the version of
	// its key the session has already seen (503 unavailable: another node, or this one once it
	// has heard of that version, takes it). See stampedAfterSession.
	errClockSkew = errors.New("clock behind the session")
	// errClockOff refuses a write this node's wall clock stamps before 1970 or past
	// consistency.MaxWall (503 unavailable: another node takes an eventual one; a strong one
	// waits for a leader with a sound clock).
	errClockOff = errors.New("wall clock out of range")
)

// httpError maps an error to its status and code: the one place where that happens.
func httpError(err error) (status int, code string) {
	switch {
	case errors.Is(err, replication.ErrInvalid), errors.Is(err, consistency.ErrUnknownLevel), errors.Is(err, consistency.ErrBadVersion):
		return http.StatusBadRequest, client.CodeBadRequest
	case errors.Is(err, replication.ErrNotFound), errors.Is(err, errNoMember):
		return http.StatusNotFound, client.CodeNotFound
	case errors.Is(err, replication.ErrConflict), errors.Is(err, errInUse):
		return http.StatusConflict, client.CodeConflict
	case errors.Is(err, replication.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, client.CodeTooLarge
	case errors.Is(err, replication.ErrNoLeader), errors.Is(err, replication.ErrNotLeader):
		return http.StatusServiceUnavailable, client.CodeNoLeader
	case errors.Is(err, replication.ErrStale), errors.Is(err, errUnsafeRemoval), errors.Is(err, errLeaving),
		errors.Is(err, errJoining), errors.Is(err, errBelowHorizon), errors.Is(err, errClockSkew), errors.Is(err, errClockOff),
		errors.Is(err, errOverloaded):
		return http.StatusServiceUnavailable, client.CodeUnavailable
	case errors.Is(err, replication.ErrOutcomeUnknown):
		return http.StatusGatewayTimeout, client.CodeOutcomeUnknown
	case errors.Is(err, replication.ErrTimeout):
		return http.StatusGatewayTimeout, client.CodeTimeout
	case errors.Is(err, errMemberRemoved):
		return http.StatusGone, client.CodeRemoved
	case errors.Is(err, fault.ErrDisabled):
		return http.StatusForbidden, client.CodeForbidden
	case errors.Is(err, errNoRoute):
		return http.StatusNotFound, client.CodeUnknownPath
	case errors.Is(err, errMethodNotAllowed):
		return http.StatusMethodNotAllowed, client.CodeMethodNotAllowed
	}
	return http.StatusInternalServerError, client.CodeInternal
}

// writeError sends the JSON error body for err.
func writeError(w http.ResponseWriter, err error) {
	writeErrorMeta(w, err, nil)
}

// writeErrorMeta sends the JSON error body for err, with meta in it when meta is not nil.
func writeErrorMeta(w http.ResponseWriter, err error, meta *client.Meta) {
	status, code := httpError(err)
	w.Header().Set(client.HeaderError, code)
	if errors.Is(err, errOverloaded) {
		w.Header().Set("Retry-After", retryAfter)
	}
	body := client.ErrorBody{Error: err.Error(), Code: code, Meta: meta}
	var ce *replication.ConflictError
	if errors.As(err, &ce) {
		body.Version = ce.Current.String()
	}
	// One compact line: programs read it, a human reads it as well, and a not-found read is a
	// hot path for some loads.
	sendJSON(w, status, body, false)
}

// writeJSON sends v indented: status, health and stats answers are read by people with curl.
func writeJSON(w http.ResponseWriter, status int, v any) {
	sendJSON(w, status, v, true)
}

// sendJSON sends v as a JSON answer with status, indented or on one line.
func sendJSON(w http.ResponseWriter, status int, v any, indent bool) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	if indent {
		enc.SetIndent("", "  ")
	}
	enc.Encode(v)
}
