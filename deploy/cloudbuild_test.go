package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// cloudBuild is the part of a Cloud Build config the tests read.
type cloudBuild struct {
	Substitutions map[string]string `yaml:"substitutions"`
	Options       map[string]any    `yaml:"options"`
	Steps         []struct {
		ID         string   `yaml:"id"`
		Name       string   `yaml:"name"`
		Entrypoint string   `yaml:"entrypoint"`
		Args       []string `yaml:"args"`
		Env        []string `yaml:"env"`
		SecretEnv  []string `yaml:"secretEnv"`
		WaitFor    []string `yaml:"waitFor"`
		Dir        string   `yaml:"dir"`
	} `yaml:"steps"`
	Images []string `yaml:"images"`
}

func readCloudBuild(t *testing.T) (*cloudBuild, string) {
	t.Helper()
	data, err := os.ReadFile(cloudbuildPath)
	if err != nil {
		t.Fatal(err)
	}
	var cb cloudBuild
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&cb); err != nil {
		t.Fatalf("parse %s: %v", cloudbuildPath, err)
	}
	if len(cb.Steps) == 0 {
		t.Fatalf("%s has no steps", cloudbuildPath)
	}
	return &cb, string(data)
}

// builtinSubstitutions are Cloud Build's own.
var builtinSubstitutions = map[string]bool{
	"PROJECT_ID": true, "PROJECT_NUMBER": true, "BUILD_ID": true, "LOCATION": true,
	"COMMIT_SHA": true, "SHORT_SHA": true, "BRANCH_NAME": true, "TAG_NAME": true,
	"REPO_NAME": true, "REVISION_ID": true, "SERVICE_ACCOUNT_EMAIL": true, "SERVICE_ACCOUNT": true,
}

var substitutionRef = regexp.MustCompile(`\$\{?([A-Z_][A-Z0-9_]*)\}?`)

func TestCloudBuildSubstitutions(t *testing.T) {
	cb, text := readCloudBuild(t)
	for _, want := range []string{"_REGION", "_REPOSITORY", "_SERVICE"} {
		if _, ok := cb.Substitutions[want]; !ok {
			t.Errorf("substitution %s is missing", want)
		}
	}
	// The project is Cloud Build's own PROJECT_ID (gcloud builds submit
	// --project), so it is never written down.
	if !strings.Contains(text, "${PROJECT_ID}") {
		t.Error("the image path does not use ${PROJECT_ID}")
	}
	for k := range cb.Substitutions {
		if !strings.HasPrefix(k, "_") {
			t.Errorf("user substitution %s must start with _", k)
		}
	}
	// Every substitution named in a step or image is defined.
	var uses []string
	for _, s := range cb.Steps {
		uses = append(uses, s.Args...)
		uses = append(uses, s.Env...)
		uses = append(uses, s.Name, s.Dir)
	}
	uses = append(uses, cb.Images...)
	for _, v := range cb.Substitutions {
		uses = append(uses, v)
	}
	for _, u := range uses {
		for _, m := range substitutionRef.FindAllStringSubmatch(u, -1) {
			name := m[1]
			if _, ok := cb.Substitutions[name]; !ok && !builtinSubstitutions[name] {
				t.Errorf("%q uses $%s, which is neither defined nor built in", u, name)
			}
		}
	}
	if v, _ := cb.Options["dynamicSubstitutions"].(bool); !v {
		t.Error("options.dynamicSubstitutions must be true: _IMAGE is built from other substitutions")
	}
}

var secretLooking = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(token|secret|password|passwd|api[_-]?key|private[_-]?key)\s*[:=]\s*['"]?[A-Za-z0-9+/_\-]{12,}`),
	regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
	regexp.MustCompile(`AIza[0-9A-Za-z_\-]{35}`),                // Google API key
	regexp.MustCompile(`ya29\.[0-9A-Za-z_\-]+`),                 // OAuth access token
	regexp.MustCompile(`"type":\s*"service_account"`),           // key file
	regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._\-]{16,}`),     // a literal bearer token
	regexp.MustCompile(`\b[0-9a-f]{32,}\b`),                     // a long hex string (tokens are made so)
	regexp.MustCompile(`(?i)SOCKERLESS_TOKEN\s*[:=]\s*['"]?\S`), // the admin token set in the file
}

func TestCloudBuildHasNoSecrets(t *testing.T) {
	cb, text := readCloudBuild(t)
	for _, re := range secretLooking {
		if m := re.FindString(text); m != "" {
			t.Errorf("%s holds something that looks like a secret (%s): %q", cloudbuildPath, re, m)
		}
	}
	for _, s := range cb.Steps {
		if len(s.SecretEnv) > 0 {
			t.Errorf("step %s takes secrets %v: the build needs none", s.ID, s.SecretEnv)
		}
	}
	if _, ok := cb.Options["availableSecrets"]; ok {
		t.Error("availableSecrets: the build needs no secrets")
	}
}

// stepImages are the builder images the steps may run.
var stepImages = []*regexp.Regexp{
	regexp.MustCompile(`^golang:\d+\.\d+$`),
	regexp.MustCompile(`^gcr\.io/cloud-builders/docker$`),
	regexp.MustCompile(`^gcr\.io/google\.com/cloudsdktool/cloud-sdk(:slim)?$`),
}

func TestCloudBuildStepsNameWhatExists(t *testing.T) {
	cb, _ := readCloudBuild(t)
	ids := map[string]bool{}
	goVersion := goModVersion(t)
	for _, s := range cb.Steps {
		t.Run(s.ID, func(t *testing.T) {
			if s.ID == "" {
				t.Fatal("step without id")
			}
			if ids[s.ID] {
				t.Errorf("id %s twice", s.ID)
			}
			for _, w := range s.WaitFor {
				if w != "-" && !ids[w] {
					t.Errorf("waits for %s, which is not an earlier step", w)
				}
			}
			ids[s.ID] = true
			known := false
			for _, re := range stepImages {
				known = known || re.MatchString(s.Name)
			}
			if !known {
				t.Errorf("builder image %s is not one of %v", s.Name, stepImages)
			}
			if strings.HasPrefix(s.Name, "golang:") && strings.TrimPrefix(s.Name, "golang:") != goVersion {
				t.Errorf("builder %s, but go.mod wants Go %s", s.Name, goVersion)
			}
			for _, a := range s.Args {
				for _, p := range pathsIn(a) {
					if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
						t.Errorf("argument %q names %s, which does not exist", a, p)
					}
				}
			}
			if s.Dir != "" {
				if _, err := os.Stat(filepath.Join(repoRoot, s.Dir)); err != nil {
					t.Errorf("dir %s does not exist", s.Dir)
				}
			}
		})
	}
	// The Dockerfile it builds is the one these tests check.
	found := false
	for _, s := range cb.Steps {
		for _, a := range s.Args {
			if a == "--file=deploy/Dockerfile" || a == "deploy/Dockerfile" {
				found = true
			}
		}
	}
	if !found {
		t.Error("no step builds deploy/Dockerfile")
	}
}

// pathsIn returns the repository paths an argument names: ./pkg/...,
// --file=PATH, or a relative path with a slash.
func pathsIn(arg string) []string {
	if _, v, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(arg, "--file") {
		arg = v
	}
	switch {
	case strings.HasPrefix(arg, "./"):
		return []string{strings.TrimSuffix(strings.TrimSuffix(arg, "..."), "/")}
	case strings.HasPrefix(arg, "deploy/") || strings.HasPrefix(arg, "services/") || strings.HasPrefix(arg, "agent/") || strings.HasPrefix(arg, "terraform/"):
		return []string{arg}
	}
	return nil
}

// goModVersion is the go directive's major.minor.
func goModVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1]
}

func TestCloudBuildDeploysOnlyTheImage(t *testing.T) {
	cb, _ := readCloudBuild(t)
	for _, s := range cb.Steps {
		if !strings.Contains(s.Name, "cloud-sdk") {
			continue
		}
		for _, a := range s.Args {
			for _, banned := range []string{"--set-env-vars", "--update-env-vars", "--set-secrets", "--update-secrets", "--env-vars-file"} {
				if strings.HasPrefix(a, banned) {
					t.Errorf("step %s changes the service's environment (%s): Terraform or cloudrun-service.yaml own it", s.ID, a)
				}
			}
		}
	}
}
