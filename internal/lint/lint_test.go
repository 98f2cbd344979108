// Package lint holds tests that keep the module's architecture true: which package may import
// which. They run `go list`, so they need the go command on PATH.
package lint

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/dialkv/dialkv"

type pkg struct {
	ImportPath string
	Deps       []string
	Standard   bool
}

func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-tags", "hashicorpmetrics", "-deps=false", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

func TestImportEdges(t *testing.T) {
	rules := []struct {
		pkg       string
		forbidden []string // import path prefixes this package must never depend on, even indirectly
		stdOnly   bool
	}{
		// Pure vocabulary: standard library only.
		{pkg: "consistency", stdOnly: true},
		// The engines never know each other; only node composes them.
		{pkg: "replication/strong", forbidden: []string{module + "/replication/eventual", module + "/node", module + "/client"}},
		{pkg: "replication/eventual", forbidden: []string{module + "/replication/strong", module + "/node", module + "/client"}},
		{pkg: "replication/store", forbidden: []string{"github.com/hashicorp/raft", "github.com/hashicorp/memberlist", module + "/node"}},
		{pkg: "replication", forbidden: []string{"github.com/hashicorp/", "go.etcd.io/bbolt", module + "/node"}},
		// Users import the client: it must not drag the server in.
		{pkg: "client", forbidden: []string{module + "/node", module + "/replication", "github.com/hashicorp/", "go.etcd.io/bbolt"}},
	}
	pkgs := listPackages(t)
	for _, r := range rules {
		p, ok := pkgs[module+"/"+r.pkg]
		if !ok {
			continue // not written yet (eventual arrives with the eventual path)
		}
		for _, dep := range p.Deps {
			if r.stdOnly && strings.Contains(strings.Split(dep, "/")[0], ".") {
				t.Errorf("%s must use the standard library only, but depends on %s", r.pkg, dep)
			}
			for _, f := range r.forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s must not depend on %s (found %s)", r.pkg, f, dep)
				}
			}
		}
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages: the check saw nothing", len(pkgs))
	}
}
