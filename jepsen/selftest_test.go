package jepsen

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/internal/plant"
)

// TestNormalKvdCannotPlant checks the kvd every other test runs: its binary holds none of the
// planted bugs' code (the switches are constants, so the compiler dropped it), and the harness
// refuses to plant a bug in it rather than run a test that could not fail.
func TestNormalKvdCannotPlant(t *testing.T) {
	bin := needKvd(t)
	syms, err := exec.Command("go", "tool", "nm", filepath.Join(bin, "kvd")).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	for _, planted := range []string{"dialkv/internal/plant.", "storeLate", "ackUncommitted", "purgeUnacknowledged"} {
		if bytes.Contains(syms, []byte(planted)) {
			t.Errorf("a normal build of kvd holds the planted-bug symbol %q", planted)
		}
	}
	if kvdPlantable(bin) {
		t.Errorf("a normal build of kvd says it can plant bugs (its -h names %s)", plant.EnvVar)
	}
	cfg := testConfig(t, "local")
	cfg.Plant = plant.NameMergeKeepsOlder
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "not a plantbugs build") {
		t.Errorf("a run planting a bug in a normal kvd: error %v, want a refusal", err)
	}
}

// TestPlantedBugsCaught is the short self-test of make test (make jepsen-selftest runs every
// planted bug): a kvd that breaks guarantee 1 (strong reads served locally) and one that breaks
// guarantees 1 and 3 (last-writer-wins inverted) must each fail a short run, by the checker
// expected, with no faults needed.
func TestPlantedBugsCaught(t *testing.T) {
	base := SelfTestDefaults()
	base.Bin = plantedKvd.need(t)
	base.Store = testStore(t)
	cases, err := SelectSelfTestCases([]string{plant.NameStrongReadLocal, plant.NameMergeKeepsOlder})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cases {
		// Both are caught within seconds without faults: keep the runs short.
		cases[i].Nemesis, cases[i].Schedule, cases[i].FaultOn, cases[i].FaultOff = "none", nil, 0, 0
		cases[i].Time = 8 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	outcomes := SelfTest(ctx, base, cases, func(o SelfTestOutcome) {
		t.Logf("%s: %s in %v, failed checks: %s (%s)", o.Case.Name(), o.Verdict, o.Took.Round(time.Second), strings.Join(o.Failed, "; "), o.Dir)
	})
	var table bytes.Buffer
	WriteSelfTestTable(&table, outcomes)
	for _, o := range outcomes {
		if o.Err != nil {
			t.Fatalf("%s: %v", o.Case.Name(), o.Err)
		}
	}
	if len(outcomes) != len(cases) || !SelfTestPassed(outcomes) {
		t.Fatalf("a planted bug was not caught by the checker expected:\n%s", table.String())
	}
}
