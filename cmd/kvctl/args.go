package main

import (
	"flag"
	"fmt"
	"strings"
	"time"
)

// parseInterspersed sets the flags found anywhere in args on fs and returns the other arguments
// (the positional ones) in order, so that `kvctl get k -v` and `kvctl -v get k` mean the same,
// as in kubectl and etcdctl. The standard flag package stops at the first positional argument,
// which is why this exists.
//
// Accepted forms: --name=value, --name value, -name (one dash works like two), and for boolean
// flags (those whose Value has IsBoolFlag() true) a bare --name meaning true. "--" ends the flags:
// everything after it is positional, which is how a value starting with "-" is passed. A lone
// "-" is positional (it means stdin).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(positional, args[i+1:]...), nil
		}
		if len(arg) < 2 || arg[0] != '-' {
			positional = append(positional, arg)
			continue
		}
		name := strings.TrimPrefix(arg[1:], "-")
		value, hasValue := "", false
		if eq := strings.IndexByte(name, '='); eq >= 0 {
			name, value, hasValue = name[:eq], name[eq+1:], true
		}
		if name == "" || name[0] == '-' {
			return nil, usageErrorf("bad flag syntax %q", arg)
		}
		f := fs.Lookup(name)
		if f == nil {
			return nil, usageErrorf("%s%s", unknownFlag, flagName(name))
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, usageErrorf("flag %s needs a value", flagName(name))
			}
			i++
			value = args[i]
		}
		if err := fs.Set(name, value); err != nil {
			return nil, usageErrorf("invalid value %q for flag %s: %s", value, flagName(name), expected(f, err))
		}
	}
	return positional, nil
}

// unknownFlag starts the error for a flag no command has (flagHint adds where the flags are).
const unknownFlag = "unknown flag "

// usageError is a mistake in the command line: kvctl exits 2 for it, 1 for failed operations.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// expected says what a flag wants, for errors: the flag package's own errors say only
// "parse error".
func expected(f *flag.Flag, err error) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err.Error()
	}
	switch g.Get().(type) {
	case time.Duration:
		return "want a duration such as 500ms, 2s or 1m"
	case int, int64, uint, uint64:
		return "want a whole number"
	case bool:
		return "want true or false"
	}
	return err.Error()
}

// commandWord returns the index of the first positional argument in args under fs's flags (the
// command word), skipping flags and the values of non-boolean flags; -1 when there is none or
// the flags before it do not parse.
func commandWord(fs *flag.FlagSet, args []string) int {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			if i+1 < len(args) {
				return i + 1
			}
			return -1
		}
		if len(arg) < 2 || arg[0] != '-' {
			return i
		}
		name := strings.TrimPrefix(arg[1:], "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			return -1
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
			i++ // its value
		}
	}
	return -1
}
