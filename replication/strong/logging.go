package strong

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/hashicorp/go-hclog"
)

// hclogSink routes hashicorp/raft's hclog output into a slog logger, at raft's own levels.
type hclogSink struct {
	logger *slog.Logger
	min    hclog.Level
}

func (s hclogSink) Accept(name string, level hclog.Level, msg string, args ...interface{}) {
	if level < s.min || level == hclog.Off {
		return
	}
	var l slog.Level
	switch {
	case level <= hclog.Debug:
		l = slog.LevelDebug
	case level == hclog.Info:
		l = slog.LevelInfo
	case level == hclog.Warn:
		l = slog.LevelWarn
	default:
		l = slog.LevelError
	}
	if !s.logger.Enabled(context.Background(), l) {
		return
	}
	args = slices.Clone(args) // hclog hands every sink the same slice
	for i, arg := range args {
		// hclog.Fmt defers formatting to the logger: hclog's own does it, slog would print the
		// verbs and operands as they are ("[%+v [...]]").
		if f, ok := arg.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	if name != "" && name != "raft" {
		args = append(args, "subsystem", name)
	}
	s.logger.Log(context.Background(), l, msg, args...)
}

// newHCLogger returns an hclog.Logger whose output goes to logger. Raft's default level is
// DEBUG, which floods; ours is INFO unless slog asks for debug.
func newHCLogger(logger *slog.Logger) hclog.Logger {
	min := hclog.Info
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		min = hclog.Debug
	}
	hl := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "raft", Level: min, Output: io.Discard})
	hl.RegisterSink(hclogSink{logger: logger, min: min})
	return hl
}
