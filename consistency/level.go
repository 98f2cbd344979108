package consistency

import (
	"errors"
	"fmt"
	"strings"
)

// Level is a consistency level named by a read or a write.
type Level string

// The levels of DESIGN.md. Writes take Strong or Eventual; reads take all four.
const (
	Strong   Level = "strong"
	Bounded  Level = "bounded"
	Session  Level = "session"
	Eventual Level = "eventual"
)

// ErrUnknownLevel is returned for a level name that is not one of the four, or one that the
// operation does not accept (e.g. a bounded write).
var ErrUnknownLevel = errors.New("unknown consistency level")

// ParseRead parses a read level; "" means Strong, the safe default.
func ParseRead(s string) (Level, error) {
	switch l := Level(strings.ToLower(strings.TrimSpace(s))); l {
	case "":
		return Strong, nil
	case Strong, Bounded, Session, Eventual:
		return l, nil
	}
	return "", fmt.Errorf("%w %q for a read: want strong, bounded, session or eventual", ErrUnknownLevel, s)
}

// ParseWrite parses a write level; "" means Strong.
func ParseWrite(s string) (Level, error) {
	switch l := Level(strings.ToLower(strings.TrimSpace(s))); l {
	case "":
		return Strong, nil
	case Strong, Eventual:
		return l, nil
	}
	return "", fmt.Errorf("%w %q for a write: want strong or eventual", ErrUnknownLevel, s)
}

func (l Level) String() string { return string(l) }
