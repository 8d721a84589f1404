package deploy

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfile is what the tests read of deploy/Dockerfile.
type dockerfile struct {
	Args   map[string]string // ARG defaults
	Stages []stage
}

type stage struct {
	From, Name string
	Env        map[string]string
	User       string
	Builds     []goBuild
	Copies     []string // COPY --from=... lines
	Entrypoint string
}

// goBuild is one "go build -o OUT PKG" of a RUN.
type goBuild struct{ Out, Pkg string }

var goBuildRe = regexp.MustCompile(`go build\b[^&;]*?-o\s+(\S+)\s+(\./\S+)`)

// readDockerfile parses deploy/Dockerfile: continuation lines joined,
// comments dropped.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	df := dockerfile{Args: map[string]string{}}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			df.Args[k] = v
		case "FROM":
			st := stage{Env: map[string]string{}}
			fields := strings.Fields(rest)
			st.From = fields[0]
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.Name = fields[2]
			}
			df.Stages = append(df.Stages, st)
		default:
			if len(df.Stages) == 0 {
				t.Fatalf("%s before FROM", instr)
			}
			st := &df.Stages[len(df.Stages)-1]
			switch strings.ToUpper(instr) {
			case "ENV":
				for _, kv := range strings.Fields(rest) {
					k, v, _ := strings.Cut(kv, "=")
					st.Env[k] = v
				}
			case "USER":
				st.User = rest
			case "RUN":
				for _, m := range goBuildRe.FindAllStringSubmatch(rest, -1) {
					st.Builds = append(st.Builds, goBuild{Out: m[1], Pkg: m[2]})
				}
			case "COPY":
				if strings.HasPrefix(rest, "--from=") {
					st.Copies = append(st.Copies, rest)
				}
			case "ENTRYPOINT":
				st.Entrypoint = rest
			}
		}
	}
	return df
}

func TestDockerfileIsMultiStageStaticAndNonRoot(t *testing.T) {
	df := readDockerfile(t)
	if len(df.Stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(df.Stages))
	}
	build, final := df.Stages[0], df.Stages[len(df.Stages)-1]
	checks := []struct {
		what string
		ok   bool
	}{
		{"build stage is golang:${GO_VERSION}", build.From == "golang:${GO_VERSION}" && build.Name != ""},
		{"GO_VERSION matches go.mod", df.Args["GO_VERSION"] == goModVersion(t)},
		{"CGO_ENABLED=0 (static binaries)", build.Env["CGO_ENABLED"] == "0"},
		{"GOOS=linux GOARCH=amd64 (Cloud Run and functions run amd64)", build.Env["GOOS"] == "linux" && build.Env["GOARCH"] == "amd64"},
		{"runtime base is distroless static (no libc, no shell)", strings.HasPrefix(final.From, "gcr.io/distroless/static")},
		{"runtime user is not root", final.User != "" && !strings.HasPrefix(final.User, "root") && !strings.HasPrefix(final.User, "0")},
		{"entrypoint is /controlplane", final.Entrypoint == `["/controlplane"]`},
		{"runtime copies both binaries from the build stage", len(final.Copies) == 2},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: no (%+v)", c.what, df)
		}
	}
	want := map[string]string{"/out/controlplane": "./services/cmd/controlplane", "/out/agent": "./agent"}
	got := map[string]string{}
	for _, b := range build.Builds {
		got[b.Out] = b.Pkg
	}
	for out, pkg := range want {
		if got[out] != pkg {
			t.Errorf("build stage makes %s from %q, want %s", out, got[out], pkg)
		}
	}
}

func TestDockerfileEnvIsWhatTheControlPlaneReads(t *testing.T) {
	cs := readSettings(t)
	for _, st := range readDockerfile(t).Stages[1:] {
		for name := range st.Env {
			if strings.HasPrefix(name, "SOCKERLESS_") {
				if _, ok := cs.Vars[name]; !ok {
					t.Errorf("ENV %s is not a variable the control plane reads", name)
				}
			}
		}
	}
}

// TestDockerfileBinariesBuild builds what deploy/Dockerfile builds, the way
// it builds them (CGO_ENABLED=0 GOOS=linux GOARCH=amd64), and checks that
// each is a static linux/amd64 executable: the agent is added to arbitrary
// user images, which may have no libc at all.
func TestDockerfileBinariesBuild(t *testing.T) {
	df := readDockerfile(t)
	build := df.Stages[0]
	if len(build.Builds) == 0 {
		t.Fatal("the Dockerfile builds nothing")
	}
	for _, b := range build.Builds {
		t.Run(filepath.Base(b.Out), func(t *testing.T) {
			bin := buildBinary(t, b.Pkg, build.Env["GOOS"], build.Env["GOARCH"])
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatalf("%s is not ELF: %v", b.Pkg, err)
			}
			defer f.Close()
			if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
				t.Errorf("%s: machine %v class %v, want x86-64", b.Pkg, f.Machine, f.Class)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s has a program interpreter (PT_INTERP): it is dynamically linked", b.Pkg)
				}
				if p.Type == elf.PT_DYNAMIC {
					t.Errorf("%s has a PT_DYNAMIC segment: it links shared libraries", b.Pkg)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("%s imports %v", b.Pkg, libs)
			}
		})
	}
}

func TestDockerignoreKeepsSourcesAndDropsState(t *testing.T) {
	data, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "terraform/**/*.tfstate*"} {
		if !lines[want] {
			t.Errorf("Dockerfile.dockerignore does not exclude %s", want)
		}
	}
	for _, keep := range []string{"services", "agent", "go.mod", "go.sum", "*.go", "**/*.go"} {
		if lines[keep] {
			t.Errorf("Dockerfile.dockerignore excludes %s, which the build needs", keep)
		}
	}
}

func TestStubLinksToTheEmbeddedSource(t *testing.T) {
	fi, err := os.Lstat("stub")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("deploy/stub is a %v, want a symlink to services/internal/functions/gcf/stub", fi.Mode())
	}
	target, err := filepath.EvalSymlinks("stub")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(filepath.Join(repoRoot, "services/internal/functions/gcf/stub"))
	if target != want {
		t.Errorf("deploy/stub resolves to %s, want %s", target, want)
	}
	for _, f := range []string{"index.js.txt", "package.json.txt"} {
		if _, err := os.Stat(filepath.Join("stub", f)); err != nil {
			t.Error(err)
		}
	}
}

func TestLocalRunScriptParses(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not on PATH")
	}
	if out, err := exec.Command(bash, "-n", "local/run.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n local/run.sh: %v\n%s", err, out)
	}
	fi, err := os.Stat("local/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Error("local/run.sh is not executable")
	}
}
