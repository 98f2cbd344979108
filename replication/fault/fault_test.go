package fault

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestDisabledInjectorRefusesAndNilInjectsNothing(t *testing.T) {
	if err := New(false).Set(Faults{DropIn: []string{"n2"}}); !errors.Is(err, ErrDisabled) {
		t.Fatalf("disabled Set = %v, want ErrDisabled", err)
	}
	var nilInj *Injector
	if nilInj.DropIn("n2") || nilInj.DropOut("n2") || nilInj.Delay() != 0 || nilInj.UnsafeStrongReads() {
		t.Fatal("a nil injector injected a fault")
	}
	if d := time.Since(nilInj.Now()); d < 0 || d > time.Second {
		t.Fatalf("nil injector clock off by %v", d)
	}
}

func TestFaultsApplyAndHeal(t *testing.T) {
	inj := New(true)
	f := Faults{DropIn: []string{"n2"}, DropOut: []string{"n3"}, Delay: Duration(10 * time.Millisecond), Jitter: Duration(5 * time.Millisecond), ClockOffset: Duration(2 * time.Second), UnsafeStrongReads: true}
	if err := inj.Set(f); err != nil {
		t.Fatal(err)
	}
	if !inj.DropIn("n2") || inj.DropIn("n3") || !inj.DropOut("n3") || inj.DropOut("n2") {
		t.Error("drop sets not applied as given")
	}
	for k := 0; k < 100; k++ {
		if d := inj.Delay(); d < 10*time.Millisecond || d > 15*time.Millisecond {
			t.Fatalf("delay %v outside [10ms, 15ms]", d)
		}
	}
	if off := inj.Now().Sub(time.Now()); off < 1900*time.Millisecond || off > 2100*time.Millisecond {
		t.Errorf("clock offset %v, want ~2s", off)
	}
	if !inj.UnsafeStrongReads() || inj.UnsafeEventualCommit() {
		t.Error("unsafe flags not as set")
	}
	if err := inj.Heal(); err != nil {
		t.Fatal(err)
	}
	if inj.DropIn("n2") || inj.DropOut("n3") || inj.Delay() != 0 || inj.UnsafeStrongReads() {
		t.Error("faults survived Heal")
	}
}

func TestLossIsAProbability(t *testing.T) {
	inj := New(true)
	if err := inj.Set(Faults{Loss: 0.5}); err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for k := 0; k < 2000; k++ {
		if inj.DropOut("any") {
			dropped++
		}
	}
	if dropped < 800 || dropped > 1200 {
		t.Errorf("loss 0.5 dropped %d of 2000", dropped)
	}
	for _, bad := range []Faults{{Loss: 1.5}, {Delay: Duration(-time.Second)}, {ClockOffset: Duration(2 * time.Hour)}} {
		if err := inj.Set(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Set(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestJSONForm(t *testing.T) {
	var f Faults
	if err := json.Unmarshal([]byte(`{"drop_in":["n1"],"delay":"150ms","clock_offset":"-1.5s","loss":0.1}`), &f); err != nil {
		t.Fatal(err)
	}
	if time.Duration(f.Delay) != 150*time.Millisecond || time.Duration(f.ClockOffset) != -1500*time.Millisecond || f.DropIn[0] != "n1" {
		t.Errorf("decoded %+v", f)
	}
	b, _ := json.Marshal(f)
	if string(b) != `{"drop_in":["n1"],"delay":"150ms","loss":0.1,"clock_offset":"-1.5s"}` {
		t.Errorf("encoded %s", b)
	}
	if err := json.Unmarshal([]byte(`{"delay":150}`), &f); err == nil {
		t.Error("a bare number was accepted as a duration")
	}
}
