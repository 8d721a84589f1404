package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Paths, relative to this package's directory (go test runs there).
const (
	repoRoot       = ".."
	moduleDir      = "../terraform/modules/sockerless"
	exampleDir     = "../terraform/examples/basic"
	serviceYAML    = "cloudrun-service.yaml"
	dockerfilePath = "Dockerfile"
	cloudbuildPath = "../cloudbuild.yaml"
)

// built caches binaries built once per test binary, by key.
var built struct {
	sync.Mutex
	paths map[string]string
	dir   string
}

// buildBinary builds pkg (relative to the repository root) with goos and
// goarch and CGO_ENABLED=0, as deploy/Dockerfile does, once per test run.
func buildBinary(t *testing.T, pkg, goos, goarch string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot build the image's binaries")
	}
	built.Lock()
	defer built.Unlock()
	key := pkg + " " + goos + "/" + goarch
	if p, ok := built.paths[key]; ok {
		return p
	}
	if built.paths == nil {
		dir, err := os.MkdirTemp("", "sockerless-deploy-test-")
		if err != nil {
			t.Fatal(err)
		}
		built.paths, built.dir = map[string]string{}, dir
	}
	out := filepath.Join(built.dir, strings.NewReplacer("/", "_", ".", "_", " ", "_").Replace(key))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=-buildvcs=false")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 GOOS=%s GOARCH=%s go build %s: %v\n%s", goos, goarch, pkg, err, msg)
	}
	built.paths[key] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// controlPlaneSettings is what the control plane binary itself says it
// reads, from its --help (generated from services/internal/settings, the
// one table of setting names, which this package may not import): every
// environment variable that sets something, and the names a hosted
// deployment must set.
type controlPlaneSettings struct {
	// Vars maps each variable (twin or alias) to its flag.
	Vars map[string]string
	// Hosted holds the flags a hosted deployment must set, by their twin
	// variable (the first name listed).
	Hosted map[string]string
}

// hostedMark is cmd/controlplane.HostedMark.
const hostedMark = "[hosted: required]"

var helpLine = regexp.MustCompile(`^\s+-([a-z][a-z0-9-]*)\b`)
var helpEnv = regexp.MustCompile(`\(env ([A-Z0-9_, ]+)\)`)

// readSettings runs the control plane's --help.
func readSettings(t *testing.T) controlPlaneSettings {
	t.Helper()
	bin := buildBinary(t, "./services/cmd/controlplane", runtime.GOOS, runtime.GOARCH)
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 2
	cs := controlPlaneSettings{Vars: map[string]string{}, Hosted: map[string]string{}}
	var flag string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if m := helpLine.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "    \t") {
			flag = m[1]
			continue
		}
		m := helpEnv.FindStringSubmatch(line)
		if m == nil || flag == "" {
			continue
		}
		names := strings.Split(m[1], ", ")
		for _, n := range names {
			cs.Vars[n] = flag
		}
		if strings.Contains(line, hostedMark) {
			cs.Hosted[names[0]] = flag
		}
	}
	if len(cs.Vars) < 10 || len(cs.Hosted) == 0 {
		t.Fatalf("controlplane -h lists %d variables and %d hosted ones; its format changed?\n%s", len(cs.Vars), len(cs.Hosted), out)
	}
	return cs
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
