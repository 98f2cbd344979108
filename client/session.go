package client

import "sync"

// Session carries a session token between requests, for `session` reads (read-your-writes and
// monotonic reads across nodes). The token is opaque server text: the client sends it in the
// Dialkv-Session header when it is non-empty and replaces it with the one in every answer that
// carries one, errors included. A Session is safe for concurrent use, but requests that run
// concurrently leave whichever token answered last; give each logical sequence its own Session.
// The zero value is an empty session.
type Session struct {
	mu    sync.Mutex
	token string
}

// NewSession returns a session that starts from token ("" for a new session), e.g. one kept in
// a file between runs (kvctl --session).
func NewSession(token string) *Session {
	return &Session{token: token}
}

// Token returns the current token ("" before any answer carried one).
func (s *Session) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// SetToken replaces the token.
func (s *Session) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// observe takes the token of an answer; an answer without one leaves the session as it was.
func (s *Session) observe(token string) {
	if s == nil || token == "" {
		return
	}
	s.SetToken(token)
}

// header returns the token to send, "" for none.
func (s *Session) header() string {
	if s == nil {
		return ""
	}
	return s.Token()
}
