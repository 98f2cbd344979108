package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"testing"
	"time"
)

func TestParseInterspersed(t *testing.T) {
	type parsed struct {
		name    string
		verbose bool
		wait    time.Duration
		n       int
	}
	tests := []struct {
		name       string
		args       []string
		want       parsed
		positional []string
		wantErr    string // "" for success
	}{
		{name: "no args", args: nil, positional: nil},
		{name: "flags before", args: []string{"--name", "x", "-v", "get", "k"},
			want: parsed{name: "x", verbose: true}, positional: []string{"get", "k"}},
		{name: "flags after", args: []string{"get", "k", "--name", "x", "-v"},
			want: parsed{name: "x", verbose: true}, positional: []string{"get", "k"}},
		{name: "flags between", args: []string{"put", "--wait=2s", "k", "-n", "3", "v"},
			want: parsed{wait: 2 * time.Second, n: 3}, positional: []string{"put", "k", "v"}},
		{name: "single dash long flag", args: []string{"-name=y", "a"},
			want: parsed{name: "y"}, positional: []string{"a"}},
		{name: "bool with value", args: []string{"-v=false", "--v=true", "a"},
			want: parsed{verbose: true}, positional: []string{"a"}},
		{name: "bool does not take the next arg", args: []string{"-v", "false"},
			want: parsed{verbose: true}, positional: []string{"false"}},
		{name: "value may look like a flag", args: []string{"--name", "-v"},
			want: parsed{name: "-v"}, positional: nil},
		{name: "empty value with equals", args: []string{"--name=", "a"},
			want: parsed{name: ""}, positional: []string{"a"}},
		{name: "value with equals sign", args: []string{"--name=a=b"},
			want: parsed{name: "a=b"}},
		{name: "double dash ends flags", args: []string{"put", "k", "--", "-5", "--name"},
			positional: []string{"put", "k", "-5", "--name"}},
		{name: "lone dash is positional", args: []string{"put", "k", "-"},
			positional: []string{"put", "k", "-"}},
		{name: "unknown flag", args: []string{"get", "--nope"}, wantErr: "unknown flag --nope"},
		{name: "missing value", args: []string{"get", "--name"}, wantErr: "flag --name needs a value"},
		{name: "bad duration", args: []string{"--wait", "soon"}, wantErr: `invalid value "soon" for flag --wait: want a duration such as 500ms, 2s or 1m`},
		{name: "bad int", args: []string{"-n=x"}, wantErr: `invalid value "x" for flag -n: want a whole number`},
		{name: "bad bool", args: []string{"-v=maybe"}, wantErr: `invalid value "maybe" for flag -v: want true or false`},
		{name: "triple dash", args: []string{"---name", "x"}, wantErr: `bad flag syntax "---name"`},
		{name: "dashes and equals only", args: []string{"--=x"}, wantErr: `bad flag syntax "--=x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got parsed
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.StringVar(&got.name, "name", "", "")
			fs.BoolVar(&got.verbose, "v", false, "")
			fs.DurationVar(&got.wait, "wait", 0, "")
			fs.IntVar(&got.n, "n", 0, "")
			positional, err := parseInterspersed(fs, tt.args)
			if tt.wantErr != "" {
				var ue *usageError
				if !errors.As(err, &ue) || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want usage error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("flags = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(positional, tt.positional) {
				t.Errorf("positional = %q, want %q", positional, tt.positional)
			}
		})
	}
}
