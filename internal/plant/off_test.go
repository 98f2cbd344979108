//go:build !plantbugs

package plant

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// allOff compiles only while every switch is a constant: in a normal build no code, flag or
// environment variable can turn a planted bug on, and the compiler drops what they guard.
const allOff = !(StrongReadLocal || StrongAckEarly || EventualAckEarly || MergeKeepsOlder ||
	SessionIgnoresToken || BoundedUnchecked || PurgeUnacknowledged)

// TestNormalBuildPlantsNothing runs this test binary again with every bug named in
// DIALKV_PLANT, and expects it to find none switched on.
func TestNormalBuildPlantsNothing(t *testing.T) {
	if os.Getenv("PLANT_TEST_CHILD") != "" {
		if Built || !allOff || len(Active()) > 0 || Err() != nil {
			t.Fatalf("normal build: built %v, all off %v, active %v, err %v", Built, allOff, Active(), Err())
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNormalBuildPlantsNothing$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PLANT_TEST_CHILD=1", EnvVar+"="+strings.Join(Names(), ","))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("with %s naming every bug: %v\n%s", EnvVar, err, out)
	}
}
