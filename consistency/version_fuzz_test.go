package consistency

import "testing"

// ParseVersion reads if_version from any client; what it accepts must render back to the same
// version (answers carry versions in that form, and a client sends them back as if_version).
//
//	go test -tags hashicorpmetrics -run XXX -fuzz FuzzParseVersion -fuzztime 60s ./consistency/
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"", "1732298000123456789.4@n1", "0.0@n1/s", "5.4294967295@a@b", "-1.0@n", "1.-1@n", "+1.0@n", "9223372036854775808.0@n", "1.2@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		if v.Wall < 0 {
			t.Fatalf("ParseVersion(%q) = %+v: a negative wall time", s, v)
		}
		if s != "" && v.IsZero() {
			t.Fatalf("ParseVersion(%q) is the zero version", s)
		}
		again, err := ParseVersion(v.String())
		if err != nil || again != v {
			t.Fatalf("ParseVersion(%q) = %+v renders as %q, which parses to %+v, %v", s, v, v.String(), again, err)
		}
		if string(v.Append(nil)) != v.String() {
			t.Fatalf("Append and String disagree on %+v", v)
		}
	})
}
