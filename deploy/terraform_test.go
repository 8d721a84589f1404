package deploy

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// allowedResources are the resource types the design needs (DESIGN.md
// and issue 5): APIs, Firestore, Artifact Registry, service accounts and
// their least-privilege grants, the admin token in Secret Manager, the
// Cloud Run service, and the bucket Cloud Build stages source in.
var allowedResources = map[string]string{
	"google_project_service":                         "the APIs",
	"google_firestore_database":                      "the store",
	"google_firestore_index":                         "indexes the store's queries need",
	"google_firestore_field":                         "the TTL policy of removed containers' final documents",
	"google_artifact_registry_repository":            "control plane images, wrapped images, the Docker Hub mirror",
	"google_artifact_registry_repository_iam_member": "push/pull on one repository",
	"google_service_account":                         "control plane, functions and build identities",
	"google_service_account_iam_member":              "acting as one account",
	"google_project_iam_member":                      "project roles where no narrower resource exists",
	"google_secret_manager_secret":                   "the admin token",
	"google_secret_manager_secret_version":           "the admin token's value",
	"google_secret_manager_secret_iam_member":        "who may read the token",
	"random_password":                                "the admin token",
	"google_cloud_run_v2_service":                    "the control plane",
	"google_cloud_run_v2_service_iam_member":         "invoking and deploying the control plane",
	"google_storage_bucket":                          "Cloud Build's source staging",
	"google_storage_bucket_iam_member":               "the build account reads its source",
}

// allowedData are the data sources the module may read.
var allowedData = map[string]bool{"google_project": true}

// roots are the Terraform directories in the repository and the outputs
// each must have.
var roots = []struct {
	dir     string
	outputs []string
}{
	{moduleDir, []string{"service_url", "forwarder_command", "docker_host"}},
	{exampleDir, []string{"service_url", "forwarder_command", "docker_host"}},
}

func loadModule(t *testing.T, dir string) *tfconfig.Module {
	t.Helper()
	mod, diags := tfconfig.LoadModule(dir)
	for _, d := range diags {
		t.Errorf("%s: %c: %s: %s", dir, d.Severity, d.Summary, d.Detail)
	}
	if mod == nil {
		t.Fatalf("%s: no module", dir)
	}
	return mod
}

func TestTerraformModulesLoadCleanly(t *testing.T) {
	for _, r := range roots {
		t.Run(r.dir, func(t *testing.T) {
			mod := loadModule(t, r.dir)
			if len(mod.Variables) == 0 {
				t.Fatal("no variables: did the module load?")
			}
			for _, name := range sortedKeys(mod.Variables) {
				if strings.TrimSpace(mod.Variables[name].Description) == "" {
					t.Errorf("variable %s has no description", name)
				}
			}
			for _, name := range sortedKeys(mod.Outputs) {
				if strings.TrimSpace(mod.Outputs[name].Description) == "" {
					t.Errorf("output %s has no description", name)
				}
			}
			for _, o := range r.outputs {
				if mod.Outputs[o] == nil {
					t.Errorf("output %s is missing", o)
				}
			}
			for key, res := range mod.ManagedResources {
				if _, ok := allowedResources[res.Type]; !ok {
					t.Errorf("resource %s: type %s is not one the design needs (allowedResources)", key, res.Type)
				}
			}
			for key, res := range mod.DataResources {
				if !allowedData[res.Type] {
					t.Errorf("data %s: type %s is not allowed", key, res.Type)
				}
			}
			for _, p := range sortedKeys(mod.RequiredProviders) {
				if p != "google" && p != "random" {
					t.Errorf("provider %s: only google and random are needed", p)
				}
			}
		})
	}
}

// references returns every var.NAME and module.NAME.OUTPUT the files of dir
// use, outside variable blocks (a validation that names its own variable is
// not a use).
func references(t *testing.T, dir string) (vars map[string]bool, moduleOutputs map[string]map[string]bool) {
	t.Helper()
	bodies, err := ParseTerraform(dir)
	if err != nil {
		t.Fatal(err)
	}
	vars, moduleOutputs = map[string]bool{}, map[string]map[string]bool{}
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for _, a := range b.Attributes {
			for _, tr := range a.Expr.Variables() {
				names := traversalNames(tr)
				switch {
				case len(names) >= 2 && names[0] == "var":
					vars[names[1]] = true
				case len(names) >= 3 && names[0] == "module":
					if moduleOutputs[names[1]] == nil {
						moduleOutputs[names[1]] = map[string]bool{}
					}
					moduleOutputs[names[1]][names[2]] = true
				}
			}
		}
		for _, blk := range b.Blocks {
			if blk.Type != "variable" {
				walk(blk.Body)
			}
		}
	}
	for _, b := range bodies {
		walk(b)
	}
	return vars, moduleOutputs
}

// traversalNames are the attribute names of a traversal: var.x.y → [var x y].
func traversalNames(tr hcl.Traversal) []string {
	var out []string
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			out = append(out, s.Name)
		case hcl.TraverseAttr:
			out = append(out, s.Name)
		default:
			return out
		}
	}
	return out
}

func TestTerraformVariablesAreUsed(t *testing.T) {
	for _, r := range roots {
		t.Run(r.dir, func(t *testing.T) {
			mod := loadModule(t, r.dir)
			used, _ := references(t, r.dir)
			for _, name := range sortedKeys(mod.Variables) {
				if !used[name] {
					t.Errorf("variable %s is never used", name)
				}
			}
			for _, name := range sortedKeys(used) {
				if mod.Variables[name] == nil {
					t.Errorf("var.%s is used but not declared", name)
				}
			}
		})
	}
}

func TestExampleCallsTheModuleCorrectly(t *testing.T) {
	mod := loadModule(t, moduleDir)
	ex := loadModule(t, exampleDir)
	call := ex.ModuleCalls["sockerless"]
	if call == nil {
		t.Fatalf("%s has no module \"sockerless\"", exampleDir)
	}
	if got, err := filepath.Abs(filepath.Join(exampleDir, call.Source)); err != nil || !sameDir(got, moduleDir) {
		t.Errorf("module source %q is not %s", call.Source, moduleDir)
	}
	bodies, err := ParseTerraform(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]bool{}
	for _, b := range bodies {
		for _, blk := range b.Blocks {
			if blk.Type == "module" && len(blk.Labels) == 1 && blk.Labels[0] == "sockerless" {
				for name := range blk.Body.Attributes {
					args[name] = true
				}
			}
		}
	}
	meta := map[string]bool{"source": true, "version": true, "providers": true, "depends_on": true, "count": true, "for_each": true}
	for _, name := range sortedKeys(args) {
		if !meta[name] && mod.Variables[name] == nil {
			t.Errorf("the example sets %s, which the module does not declare", name)
		}
	}
	for _, name := range sortedKeys(mod.Variables) {
		if mod.Variables[name].Required && !args[name] {
			t.Errorf("the example does not set the module's required variable %s", name)
		}
	}
	_, outs := references(t, exampleDir)
	for _, o := range sortedKeys(outs["sockerless"]) {
		if mod.Outputs[o] == nil {
			t.Errorf("the example reads module.sockerless.%s, which the module does not output", o)
		}
	}
}

func sameDir(a, b string) bool {
	ab, err := filepath.Abs(b)
	return err == nil && filepath.Clean(a) == filepath.Clean(ab)
}

// validationFuncs are the Terraform functions the variables' validations
// use.
var validationFuncs = map[string]function.Function{
	"can":      tryfunc.CanFunc,
	"regex":    stdlib.RegexFunc,
	"contains": stdlib.ContainsFunc,
	"length":   stdlib.LengthFunc,
}

// validate evaluates the validation blocks of variable name in dir with
// value v; it returns false if any condition is false.
func validate(t *testing.T, dir, name string, v cty.Value) bool {
	t.Helper()
	bodies, err := ParseTerraform(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: v})},
		Functions: validationFuncs,
	}
	found := false
	for _, b := range bodies {
		for _, blk := range b.Blocks {
			if blk.Type != "variable" || len(blk.Labels) != 1 || blk.Labels[0] != name {
				continue
			}
			for _, val := range children(blk.Body, "validation") {
				found = true
				cond, diags := val.Attributes["condition"].Expr.Value(ctx)
				if diags.HasErrors() {
					t.Fatalf("%s: var.%s: condition: %s", dir, name, diags)
				}
				if cond.False() {
					return false
				}
			}
		}
	}
	if !found {
		t.Fatalf("%s: var.%s has no validation", dir, name)
	}
	return true
}

func TestTerraformValidatesProjectAndRegion(t *testing.T) {
	tests := []struct {
		variable string
		value    string
		valid    bool
	}{
		{"project_id", "my-project-123", true},
		{"project_id", "example.com:my-project", true},
		{"project_id", "My_Project", false},
		{"project_id", "abc", false},
		{"project_id", "1project", false},
		{"project_id", "my-project-", false},
		{"region", "us-central1", true},
		{"region", "europe-west4", true},
		{"region", "northamerica-northeast2", true},
		{"region", "us-central1-a", false},
		{"region", "us", false},
		{"region", "US-CENTRAL1", false},
	}
	for _, dir := range []string{moduleDir, exampleDir} {
		for _, tt := range tests {
			t.Run(filepath.Base(dir)+"/"+tt.variable+"="+tt.value, func(t *testing.T) {
				if got := validate(t, dir, tt.variable, cty.StringVal(tt.value)); got != tt.valid {
					t.Fatalf("valid = %v, want %v", got, tt.valid)
				}
			})
		}
	}
}

func TestTerraformFmt(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH: skipping terraform fmt -check (install terraform to run it)")
	}
	cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", "terraform")
	cmd.Dir = repoRoot
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("terraform fmt -check -recursive terraform: %v (run terraform fmt -recursive terraform)\n%s%s", err, stdout.String(), stderr.String())
	}
}
