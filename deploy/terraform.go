package deploy

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// ServiceResourceType is the Terraform resource of the control plane.
const ServiceResourceType = "google_cloud_run_v2_service"

// ParseTerraform parses every .tf file of the module in dir.
func ParseTerraform(dir string) ([]*hclsyntax.Body, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	p := hclparse.NewParser()
	var bodies []*hclsyntax.Body
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %w", path, diags)
		}
		bodies = append(bodies, f.Body.(*hclsyntax.Body))
	}
	return bodies, nil
}

// ReadTerraformService reads the one google_cloud_run_v2_service of the
// module in dir. Expressions are evaluated with the variables' defaults;
// those that depend on anything else are not literal.
func ReadTerraformService(dir string) (*Service, error) {
	bodies, err := ParseTerraform(dir)
	if err != nil {
		return nil, err
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": variableDefaults(bodies)}}
	var found []*hclsyntax.Block
	for _, b := range bodies {
		for _, blk := range b.Blocks {
			if blk.Type == "resource" && len(blk.Labels) == 2 && blk.Labels[0] == ServiceResourceType {
				found = append(found, blk)
			}
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%s: want one %s, got %d", dir, ServiceResourceType, len(found))
	}
	tmpl := child(found[0].Body, "template")
	if tmpl == nil {
		return nil, fmt.Errorf("%s: %s has no template", dir, ServiceResourceType)
	}
	s := &Service{MinInstances: -1, MaxInstances: -1}
	if v, ok := eval(ctx, tmpl, "timeout"); ok && v.Type() == cty.String {
		if d, err := time.ParseDuration(v.AsString()); err == nil {
			s.TimeoutSeconds = int(d / time.Second)
		}
	}
	s.SessionAffinity = evalBool(ctx, tmpl, "session_affinity")
	s.Concurrency = evalInt(ctx, tmpl, "max_instance_request_concurrency", 0)
	if sc := child(tmpl, "scaling"); sc != nil {
		s.MinInstances = evalInt(ctx, sc, "min_instance_count", -1)
		s.MaxInstances = evalInt(ctx, sc, "max_instance_count", -1)
	}
	containers := children(tmpl, "containers")
	if len(containers) != 1 {
		return nil, fmt.Errorf("%s: want one container, got %d", dir, len(containers))
	}
	c := containers[0]
	if p := child(c, "ports"); p != nil {
		s.Port = evalInt(ctx, p, "container_port", 0)
	}
	if r := child(c, "resources"); r != nil {
		if v, ok := eval(ctx, r, "cpu_idle"); ok && v.Type() == cty.Bool {
			s.CPUAlwaysAllocated = v.False()
		}
	}
	for _, e := range children(c, "env") {
		name, ok := eval(ctx, e, "name")
		if !ok || name.Type() != cty.String {
			return nil, fmt.Errorf("%s: an env block's name is not a literal string", dir)
		}
		env := Env{Name: name.AsString()}
		if v, ok := eval(ctx, e, "value"); ok && v.Type() == cty.String {
			env.Value, env.Literal = v.AsString(), true
		} else if vs := child(e, "value_source"); vs != nil && child(vs, "secret_key_ref") != nil {
			env.FromSecret = true
		} else if _, set := e.Attributes["value"]; !set {
			return nil, fmt.Errorf("%s: env %s has neither a value nor a secret", dir, env.Name)
		}
		s.Env = append(s.Env, env)
	}
	return s, nil
}

// variableDefaults is the var object of the module's variables with
// defaults.
func variableDefaults(bodies []*hclsyntax.Body) cty.Value {
	vars := map[string]cty.Value{}
	for _, b := range bodies {
		for _, blk := range b.Blocks {
			if blk.Type != "variable" || len(blk.Labels) != 1 {
				continue
			}
			if v, ok := eval(nil, blk.Body, "default"); ok {
				vars[blk.Labels[0]] = v
			}
		}
	}
	return cty.ObjectVal(vars)
}

// eval evaluates attribute name of body; ok is false when it is absent,
// depends on anything ctx lacks, or is unknown.
func eval(ctx *hcl.EvalContext, body *hclsyntax.Body, name string) (cty.Value, bool) {
	attr, ok := body.Attributes[name]
	if !ok {
		return cty.NilVal, false
	}
	v, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return cty.NilVal, false
	}
	return v, true
}

func evalBool(ctx *hcl.EvalContext, body *hclsyntax.Body, name string) bool {
	v, ok := eval(ctx, body, name)
	return ok && v.Type() == cty.Bool && v.True()
}

func evalInt(ctx *hcl.EvalContext, body *hclsyntax.Body, name string, def int) int {
	v, ok := eval(ctx, body, name)
	if !ok || v.Type() != cty.Number {
		return def
	}
	n, acc := v.AsBigFloat().Int64()
	if acc != 0 {
		return def
	}
	return int(n)
}

func child(body *hclsyntax.Body, typ string) *hclsyntax.Body {
	if c := children(body, typ); len(c) > 0 {
		return c[0]
	}
	return nil
}

func children(body *hclsyntax.Body, typ string) []*hclsyntax.Body {
	var out []*hclsyntax.Body
	for _, b := range body.Blocks {
		if b.Type == typ {
			out = append(out, b.Body)
		}
	}
	return out
}
