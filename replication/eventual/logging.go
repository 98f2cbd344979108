package eventual

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// logWriter is the io.Writer behind memberlist's *log.Logger. memberlist writes one line per
// event, "[LEVEL] memberlist: message"; the writer turns each into a slog record at that level.
// observe, when set, sees every parsed line (even those the logger's level hides): memberlist
// reports some events only in its log.
type logWriter struct {
	logger  *slog.Logger
	observe func(level slog.Level, msg string)
}

func newMemberlistLogger(logger *slog.Logger, observe func(slog.Level, string)) *log.Logger {
	return log.New(logWriter{logger: logger, observe: observe}, "", 0)
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line == "" {
			continue
		}
		level, msg := parseLogLine(line)
		if w.observe != nil {
			w.observe(level, msg)
		}
		if w.logger.Enabled(context.Background(), level) {
			w.logger.Log(context.Background(), level, msg, "source", "memberlist")
		}
	}
	return len(p), nil
}

// parseLogLine splits memberlist's "[LEVEL] memberlist: msg" into a slog level and the message.
// A line without a level tag is INFO.
func parseLogLine(line string) (slog.Level, string) {
	level := slog.LevelInfo
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			switch strings.ToUpper(line[1:end]) {
			case "TRACE", "DEBUG":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			line = line[end+1:]
		}
	}
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "memberlist: ")
	return level, line
}

// suspectedNode extracts the node name from memberlist's log line for a failed probe, its only
// report of a local suspicion ("Suspect NAME has failed, no acks received").
func suspectedNode(msg string) (string, bool) {
	const prefix, suffix = "Suspect ", " has failed, no acks received"
	if !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, suffix) {
		return "", false
	}
	name := msg[len(prefix) : len(msg)-len(suffix)]
	return name, name != ""
}
