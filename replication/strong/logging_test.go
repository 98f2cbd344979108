package strong

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Raft formats some values lazily with hclog.Fmt (its "initial configuration" line lists the
// servers that way): the sink must format them, or the log shows the format verbs instead.
func TestHCLogSinkFormatsFmtValues(t *testing.T) {
	var out bytes.Buffer
	hl := newHCLogger(slog.New(slog.NewTextHandler(&out, nil)))
	hl.Info("initial configuration", "index", 3, "servers", hclog.Fmt("%+v", []string{"n1", "n2"}))
	line := out.String()
	if !strings.Contains(line, `servers="[n1 n2]"`) || !strings.Contains(line, "index=3") {
		t.Errorf("log line %q, want index=3 and servers=\"[n1 n2]\"", line)
	}
}
