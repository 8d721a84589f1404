package archtest

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// moduleGraph reads the import graph of every package in the module.
func moduleGraph(t *testing.T) Graph {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", Module+"/...")
	cmd.Dir = "../../.." // the module root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	g := Graph{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			g[f[0]] = f[1:]
		}
	}
	return g
}

func TestDependenciesPointInward(t *testing.T) {
	g := moduleGraph(t)
	for _, p := range []string{"agent", "services/internal/engine", "services/internal/controlplane"} {
		if _, ok := g[Module+"/"+p]; !ok {
			t.Fatalf("go list did not list %s: the rules would check nothing", p)
		}
	}
	for _, v := range Check(g, Rules) {
		t.Error(v)
	}
}

// TestRulesCatchViolations feeds each rule a graph that breaks it.
func TestRulesCatchViolations(t *testing.T) {
	m := Module + "/"
	tests := []struct {
		name string
		pkg  string
		dep  string
	}{
		{"agent imports the engine", m + "agent/internal/session", m + "services/internal/engine"},
		{"engine imports the Firestore SDK", m + "services/internal/engine", "cloud.google.com/go/firestore"},
		{"engine imports google.golang.org/api", m + "services/internal/engine", "google.golang.org/api/option"},
		{"engine imports chi", m + "services/internal/engine", "github.com/go-chi/chi/v5"},
		{"engine imports websocket", m + "services/internal/engine", "github.com/coder/websocket"},
		{"bolt imports firestore", m + "services/internal/store/bolt", m + "services/internal/store/firestore"},
		{"dockerapi imports agenthub", m + "services/internal/dockerapi", m + "services/internal/agenthub"},
		{"controlplane imports gcpsim", m + "services/internal/controlplane", m + "services/internal/gcpsim/run"},
		{"fleet imports gcpsim", m + "services/internal/fleet", m + "services/internal/gcpsim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := Check(Graph{tt.pkg: {tt.dep}}, Rules); len(v) != 1 {
				t.Fatalf("violations %q, want one", v)
			}
		})
	}
	allowed := Graph{
		m + "services/internal/store/firestore/fsemu": {m + "services/internal/store/firestore"}, // within one adapter
		m + "services/cmd/gcpsim":                     {m + "services/internal/gcpsim"},
		m + "services/internal/devstack":              {m + "services/internal/gcpsim"},
		m + "agent/internal/session":                  {m + "agent/proto"},
		m + "services/internal/engine":                {"github.com/moby/moby/api/types/container"},
	}
	if v := Check(allowed, Rules); len(v) != 0 {
		t.Fatalf("allowed dependencies flagged: %q", v)
	}
}
