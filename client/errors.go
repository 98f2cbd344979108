package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error is a failed operation: either a server's error answer (Status > 0, decoded from the
// JSON body of docs/http-api.md) or, with Status 0 and Code CodeOutcomeUnknown, a write that
// was sent and got no answer. Test for kinds with IsNotFound, IsConflict, IsOutcomeUnknown and
// IsUnavailable rather than comparing fields.
type Error struct {
	// Status is the HTTP status; 0 when no answer came.
	Status int
	// Code is one of the Code* constants ("" when the body was not a dialkv error).
	Code string
	// Message is the server's human sentence, or the client's when no answer came.
	Message string
	// Node is the node that answered (its Dialkv-Node header), when known.
	Node string
	// Version is the key's current version on conflicts, when the key exists.
	Version string
	// Endpoint is the endpoint the request was sent to.
	Endpoint string
	// RequestID is the X-Request-Id the request carried: grep the servers' logs for it.
	RequestID string
	// Err is the transport error behind a client-made outcome_unknown error.
	Err error
}

// Error returns one line: "code: message (current version V, node N)".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Code != "":
		b.WriteString(e.Code)
	case e.Status != 0:
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	default:
		b.WriteString("error")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(e.Message))
	}
	var notes []string
	if e.Version != "" && !strings.Contains(e.Message, e.Version) {
		notes = append(notes, "current version "+e.Version)
	}
	switch {
	case e.Node != "":
		notes = append(notes, "node "+e.Node)
	case e.Status != 0 && e.Endpoint != "":
		// No node id in the answer (not a dialkv server?): say where it came from.
		notes = append(notes, "endpoint "+e.Endpoint)
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, ", ") + ")")
	}
	return b.String()
}

// Unwrap returns the transport error behind a client-made error, if any.
func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether err says the key does not exist (or was deleted).
func IsNotFound(err error) bool { return hasCode(err, CodeNotFound) }

// IsConflict reports whether err says a compare-and-set or create-if-absent condition failed.
// The key's current version, when it exists, is in the *Error's Version.
func IsConflict(err error) bool { return hasCode(err, CodeConflict) }

// IsOutcomeUnknown reports whether err says a write may or may not have been applied: the
// server said so (504 outcome_unknown), or the request was sent and no answer came (timeout,
// connection reset, cancelled context). Read the key to find out; do not blindly retry.
func IsOutcomeUnknown(err error) bool { return hasCode(err, CodeOutcomeUnknown) }

// IsUnavailable reports whether err says the cluster could not serve the request now and did
// nothing: no leader (no quorum), or the node cannot serve the level (e.g. a bounded read over
// its bound). Retrying later, or at a weaker level, may succeed.
func IsUnavailable(err error) bool {
	return hasCode(err, CodeNoLeader) || hasCode(err, CodeUnavailable)
}

func hasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// maxErrorBody caps how much of an error answer is read. A real one is one JSON object whose
// message may quote the key, escaped twice (Go's %q, then JSON): up to 6 bytes for each of a
// key's 32768, so about 200 KiB; anything longer is not worth holding in memory.
const maxErrorBody = 256 << 10

// decodeError builds the *Error of a non-2xx answer. A body that is not a dialkv error (a proxy's
// HTML page, say) becomes the message as far as it is readable, with the code of the
// Dialkv-Error header, which only a dialkv node sends: empty for a proxy's page, so the kind
// helpers do not mistake it for a dialkv answer.
func decodeError(endpoint, requestID string, status int, header http.Header, body []byte) *Error {
	e := &Error{
		Status:    status,
		Node:      header.Get(HeaderNode),
		Endpoint:  endpoint,
		RequestID: requestID,
	}
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err == nil && (eb.Code != "" || eb.Error != "") {
		e.Code, e.Message, e.Version = eb.Code, eb.Error, eb.Version
		return e
	}
	// A dialkv node repeats the code in a header: it still says what happened when the body is
	// cut (longer than maxErrorBody) or garbled, and a 409's header names the live version.
	if e.Code = header.Get(HeaderError); e.Code == CodeConflict {
		e.Version = header.Get(HeaderVersion)
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		// Cut at a byte count, then drop a rune the cut may have split.
		text = strings.ToValidUTF8(text[:200], "") + "..."
	}
	if text == "" {
		text = http.StatusText(status)
	}
	e.Message = text
	return e
}

// oneLine folds a multi-line message so Error() stays one line (kvctl prints it as such).
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
