package settings_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sockerless/sockerless/deploy"
	"github.com/sockerless/sockerless/services/internal/settings"
)

// The deployment's own tests (go test ./deploy/) read the control plane's
// --help; these read the table directly, so that a change to the table
// fails here first.

const repo = "../../.."

func TestDeploymentsSetOnlyTableNames(t *testing.T) {
	svcs := map[string]func() (*deploy.Service, error){
		"deploy/cloudrun-service.yaml": func() (*deploy.Service, error) {
			return deploy.ReadKnativeService(repo + "/deploy/cloudrun-service.yaml")
		},
		"terraform/modules/sockerless": func() (*deploy.Service, error) {
			return deploy.ReadTerraformService(repo + "/terraform/modules/sockerless")
		},
	}
	for name, read := range svcs {
		t.Run(name, func(t *testing.T) {
			svc, err := read()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range svc.Env {
				s, ok := settings.ByEnv(e.Name)
				if !ok {
					t.Errorf("%s is not in the settings table", e.Name)
					continue
				}
				if e.Name != s.Env {
					t.Errorf("%s is an alias of %s: deployments use the twin", e.Name, s.Env)
				}
			}
			for _, s := range settings.Hosted() {
				if _, ok := svc.Lookup(s.Env); !ok {
					t.Errorf("hosted setting %s is not set", s.Ref())
				}
			}
		})
	}
}

// validationPattern finds the regex("...") of a variable's validation.
func validationPattern(t *testing.T, file, variable string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, `variable "`+variable+`"`)
	if i < 0 {
		t.Fatalf("%s declares no variable %s", file, variable)
	}
	m := regexp.MustCompile(`regex\("((?:[^"\\]|\\.)*)"`).FindStringSubmatch(text[i:])
	if m == nil {
		t.Fatalf("%s: variable %s has no regex validation", file, variable)
	}
	return strings.ReplaceAll(m[1], `\\`, `\`)
}

func TestTerraformValidatesWithTheControlPlanesPatterns(t *testing.T) {
	tests := []struct {
		file, variable, want string
	}{
		{"/terraform/modules/sockerless/variables.tf", "project_id", settings.ProjectPattern},
		{"/terraform/modules/sockerless/variables.tf", "region", settings.RegionPattern},
		{"/terraform/examples/basic/variables.tf", "project_id", settings.ProjectPattern},
		{"/terraform/examples/basic/variables.tf", "region", settings.RegionPattern},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.variable, func(t *testing.T) {
			if got := validationPattern(t, repo+tt.file, tt.variable); got != tt.want {
				t.Fatalf("pattern %q, want the control plane's %q", got, tt.want)
			}
		})
	}
}

func TestReadmeDocumentsEverySetting(t *testing.T) {
	data, err := os.ReadFile(repo + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings.All() {
		for _, name := range s.Names() {
			if !strings.Contains(string(data), "`"+name+"`") {
				t.Errorf("README does not name %s (%s)", name, s.Ref())
			}
		}
	}
}
