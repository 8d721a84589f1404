package deploy

import (
	"reflect"
	"testing"
)

// readServices reads both definitions of the control plane's service.
func readServices(t *testing.T) map[string]*Service {
	t.Helper()
	yamlSvc, err := ReadKnativeService(serviceYAML)
	if err != nil {
		t.Fatal(err)
	}
	tfSvc, err := ReadTerraformService(moduleDir)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*Service{serviceYAML: yamlSvc, "terraform " + ServiceResourceType: tfSvc}
}

// portEnv is set by Cloud Run, never by a definition.
const portEnv = "PORT"

func TestServiceEnvIsWhatTheControlPlaneReads(t *testing.T) {
	cs := readSettings(t)
	for name, svc := range readServices(t) {
		t.Run(name, func(t *testing.T) {
			set := map[string]bool{}
			for _, e := range svc.Env {
				if set[e.Name] {
					t.Errorf("%s is set twice", e.Name)
				}
				set[e.Name] = true
				flag, ok := cs.Vars[e.Name]
				switch {
				case e.Name == portEnv:
					t.Errorf("%s is Cloud Run's to set", portEnv)
				case !ok:
					t.Errorf("%s is not a variable the control plane reads (controlplane -h)", e.Name)
				case e.Name != envTwin(flag):
					t.Errorf("%s is a seed alias: use the twin %s", e.Name, envTwin(flag))
				}
			}
			for _, env := range sortedKeys(cs.Hosted) {
				if !set[env] {
					t.Errorf("%s (--%s) is required in hosted mode but not set", env, cs.Hosted[env])
				}
			}
			token, ok := svc.Lookup("SOCKERLESS_TOKEN")
			if !ok || !token.FromSecret {
				t.Errorf("SOCKERLESS_TOKEN must come from Secret Manager, got %+v", token)
			}
			if e, ok := svc.Lookup("SOCKERLESS_STORE"); ok && e.Literal && e.Value != "firestore" {
				t.Errorf("SOCKERLESS_STORE is %q: a hosted control plane keeps its state in firestore", e.Value)
			}
			for _, dev := range []string{"SOCKERLESS_DEV", "SOCKERLESS_GCP_ENDPOINT", "SOCKERLESS_OPERATION_DELAY", "SOCKERLESS_LISTEN"} {
				if set[dev] {
					t.Errorf("%s is set: it is for --dev (or Cloud Run's PORT decides)", dev)
				}
			}
		})
	}
}

// envTwin is the variable named after a flag: state-dir →
// SOCKERLESS_STATE_DIR; other variables of a flag are the seed's aliases.
func envTwin(flag string) string {
	b := []byte("SOCKERLESS_")
	for _, c := range []byte(flag) {
		switch {
		case c == '-':
			b = append(b, '_')
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func TestServiceDefinitionsAgree(t *testing.T) {
	svcs := readServices(t)
	yamlSvc, tfSvc := svcs[serviceYAML], svcs["terraform "+ServiceResourceType]
	names := func(s *Service) []string {
		var out []string
		for _, e := range s.Env {
			out = append(out, e.Name)
		}
		return out
	}
	if a, b := names(yamlSvc), names(tfSvc); !reflect.DeepEqual(a, b) {
		t.Errorf("env differs:\n  %s: %v\n  terraform: %v", serviceYAML, a, b)
	}
	for _, e := range yamlSvc.Env {
		o, ok := tfSvc.Lookup(e.Name)
		if !ok {
			continue
		}
		if e.FromSecret != o.FromSecret {
			t.Errorf("%s: from a secret in %s %v, in terraform %v", e.Name, serviceYAML, e.FromSecret, o.FromSecret)
		}
		if e.Literal && o.Literal && e.Value != o.Value {
			t.Errorf("%s: %q in %s, %q in terraform (with its defaults)", e.Name, e.Value, serviceYAML, o.Value)
		}
	}
	shape := func(s *Service) Service {
		c := *s
		c.Env = nil
		return c
	}
	if a, b := shape(yamlSvc), shape(tfSvc); !reflect.DeepEqual(a, b) {
		t.Errorf("service shape differs:\n  %s: %+v\n  terraform: %+v", serviceYAML, a, b)
	}
}

func TestServiceShapeFitsTheDesign(t *testing.T) {
	for name, svc := range readServices(t) {
		t.Run(name, func(t *testing.T) {
			tests := []struct {
				what string
				ok   bool
				got  any
			}{
				{"one instance at most: streams are not relayed between instances", svc.MaxInstances == 1, svc.MaxInstances},
				{"one instance always: the hub must be up when agents call back", svc.MinInstances == 1, svc.MinInstances},
				{"CPU always allocated: the hub and timers work between requests", svc.CPUAlwaysAllocated, svc.CPUAlwaysAllocated},
				{"request timeout 3600 s: a stream is one request of up to an hour", svc.TimeoutSeconds == 3600, svc.TimeoutSeconds},
				{"session affinity", svc.SessionAffinity, svc.SessionAffinity},
				{"concurrency sized for streams (80 to 1000)", svc.Concurrency >= 80 && svc.Concurrency <= 1000, svc.Concurrency},
				{"port 8080", svc.Port == 8080, svc.Port},
			}
			for _, tt := range tests {
				if !tt.ok {
					t.Errorf("%s: got %v", tt.what, tt.got)
				}
			}
		})
	}
}

func TestKnativePlaceholdersAreDocumented(t *testing.T) {
	got, err := Placeholders(serviceYAML)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"IMAGE", "PROJECT_ID", "PROJECT_NUMBER", "REGION", "SERVICE"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("placeholders %v, want %v (update the file's header and the README)", got, want)
	}
}
