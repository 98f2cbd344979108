//go:build plantbugs

package plant

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

// switches maps each name to its switch, as on.go sets them.
func switches() map[string]bool {
	return map[string]bool{
		NameStrongReadLocal: StrongReadLocal, NameStrongAckEarly: StrongAckEarly,
		NameEventualAckEarly: EventualAckEarly, NameMergeKeepsOlder: MergeKeepsOlder,
		NameSessionIgnoresToken: SessionIgnoresToken, NameBoundedUnchecked: BoundedUnchecked,
		NamePurgeUnacknowledged: PurgeUnacknowledged,
	}
}

// TestEachNameTurnsOnItsSwitch runs this test binary again once per bug, with DIALKV_PLANT
// naming it, and expects exactly that switch on.
func TestEachNameTurnsOnItsSwitch(t *testing.T) {
	if want := os.Getenv("PLANT_TEST_CHILD"); want != "" {
		for name, on := range switches() {
			if on != (name == want) {
				t.Errorf("%s=%s: switch %s is %v", EnvVar, want, name, on)
			}
		}
		if !slices.Equal(Active(), []string{want}) || Err() != nil {
			t.Errorf("active %v, err %v; want [%s]", Active(), Err(), want)
		}
		return
	}
	if len(switches()) != len(Bugs) {
		t.Fatalf("%d switches for %d bugs", len(switches()), len(Bugs))
	}
	for _, name := range Names() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEachNameTurnsOnItsSwitch$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PLANT_TEST_CHILD="+name, EnvVar+"="+name)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}
