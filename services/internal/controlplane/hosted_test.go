package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostedConfig is a complete hosted configuration as the Terraform module
// sets it.
func hostedConfig(t *testing.T) Config {
	t.Helper()
	agent := filepath.Join(t.TempDir(), "agent")
	if err := os.WriteFile(agent, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{
		Store:           "firestore",
		Listen:          []string{"tcp://0.0.0.0:8080"},
		Token:           "0123456789abcdef0123456789abcdef",
		CallbackURL:     "wss://sockerless-123456789012.us-central1.run.app",
		Project:         "my-project",
		Region:          "us-central1",
		ServiceAccount:  "sockerless-fn@my-project.iam.gserviceaccount.com",
		TargetRepo:      "us-central1-docker.pkg.dev/my-project/sockerless-wrapped/wrapped",
		RegistryMirrors: map[string]string{"docker.io": "https://us-central1-docker.pkg.dev/my-project/dockerhub"},
		AgentBinary:     agent,
	}
}

func TestValidateHosted(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "complete configuration is accepted", change: func(*Config) {}},
		{name: "https callback is accepted", change: func(c *Config) { c.CallbackURL = "https://cp.example.com" }},
		{name: "missing project is refused", change: func(c *Config) { c.Project = "" },
			want: []string{"--gcp-project (SOCKERLESS_GCP_PROJECT) is required when not --dev"}},
		{name: "malformed project is refused", change: func(c *Config) { c.Project = "My_Project" },
			want: []string{"--gcp-project (SOCKERLESS_GCP_PROJECT)", "not a Google Cloud project ID"}},
		{name: "missing region is refused", change: func(c *Config) { c.Region = "" },
			want: []string{"--gcp-region (SOCKERLESS_GCP_REGION) is required"}},
		{name: "zone as region is refused", change: func(c *Config) { c.Region = "us-central1-a" },
			want: []string{"--gcp-region (SOCKERLESS_GCP_REGION)", "not a Google Cloud region"}},
		{name: "missing image repo is refused", change: func(c *Config) { c.TargetRepo = "" },
			want: []string{"--image-repo (SOCKERLESS_IMAGE_REPO) is required"}},
		{name: "image repo with scheme is refused", change: func(c *Config) { c.TargetRepo = "https://us-docker.pkg.dev/p/r" },
			want: []string{"--image-repo (SOCKERLESS_IMAGE_REPO)", "without a scheme"}},
		{name: "image repo without path is refused", change: func(c *Config) { c.TargetRepo = "wrapped" },
			want: []string{"--image-repo (SOCKERLESS_IMAGE_REPO)", "not a repository"}},
		{name: "missing callback URL is refused", change: func(c *Config) { c.CallbackURL = "" },
			want: []string{"--callback-url (SOCKERLESS_CALLBACK_URL) is required"}},
		{name: "plain ws callback is refused", change: func(c *Config) { c.CallbackURL = "ws://cp.example.com" },
			want: []string{"--callback-url (SOCKERLESS_CALLBACK_URL) is plain ws outside --dev"}},
		{name: "callback without host is refused", change: func(c *Config) { c.CallbackURL = "cp.example.com" },
			want: []string{"--callback-url (SOCKERLESS_CALLBACK_URL) is not a URL"}},
		{name: "missing token is refused", change: func(c *Config) { c.Token = "" },
			want: []string{"--token (SOCKERLESS_TOKEN) is required"}},
		{name: "short token is refused without showing it", change: func(c *Config) { c.Token = "s3cr3t" },
			want: []string{"--token (SOCKERLESS_TOKEN) is shorter than 16"}},
		{name: "missing functions account is refused", change: func(c *Config) { c.ServiceAccount = "" },
			want: []string{"--service-account (SOCKERLESS_SERVICE_ACCOUNT) is required"}},
		{name: "account that is no email is refused", change: func(c *Config) { c.ServiceAccount = "functions" },
			want: []string{"--service-account (SOCKERLESS_SERVICE_ACCOUNT)", "not a service account email"}},
		{name: "bolt store is refused", change: func(c *Config) { c.Store = "bolt"; c.StateDir = "/s" },
			want: []string{"--store (SOCKERLESS_STORE) is bolt", "use --store firestore"}},
		{name: "default store is refused", change: func(c *Config) { c.Store = "" },
			want: []string{"--store (SOCKERLESS_STORE) is bolt"}},
		{name: "plain HTTP mirror is refused", change: func(c *Config) { c.RegistryMirrors = map[string]string{"docker.io": "http://10.0.0.1:5000"} },
			want: []string{"--registry-mirror (SOCKERLESS_REGISTRY_MIRROR) docker.io=http://10.0.0.1:5000 is plain HTTP outside --dev"}},
		{name: "gcpsim endpoint is refused", change: func(c *Config) { c.GCPEndpoint = "127.0.0.1:9090" },
			want: []string{"--gcp-endpoint (SOCKERLESS_GCP_ENDPOINT)", "--dev only"}},
		{name: "no listener and no PORT is refused", change: func(c *Config) { c.Listen = nil },
			want: []string{"--listen (SOCKERLESS_LISTEN) is required"}},
		{name: "every problem is reported at once", change: func(c *Config) { c.Project, c.Token, c.Store = "", "", "bolt" },
			want: []string{"--gcp-project", "--token", "--store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := hostedConfig(t)
			tt.change(&cfg)
			token := cfg.Token
			err := cfg.validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate accepted %+v", cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if token != "" && strings.Contains(err.Error(), token) {
				t.Errorf("error shows the token: %q", err)
			}
		})
	}
}

func TestValidateHostedFirestoreNeedsNoStateDir(t *testing.T) {
	cfg := hostedConfig(t)
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir == "" || !filepath.IsAbs(cfg.StateDir) {
		t.Fatalf("state dir %q, want an absolute scratch directory", cfg.StateDir)
	}
}

func TestValidateDevKeepsItsRules(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{name: "dev with bolt, no project and plain HTTP is accepted", change: func(*Config) {}},
		{name: "dev without state dir is refused", change: func(c *Config) { c.StateDir = "" }, want: "--state-dir (SOCKERLESS_STATE_DIR) is required"},
		{name: "dev without listener is refused", change: func(c *Config) { c.Listen = nil }, want: "--listen (SOCKERLESS_LISTEN) is required"},
		{name: "missing agent binary is refused", change: func(c *Config) { c.AgentBinary = "/nonexistent/agent" }, want: "--agent-binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hosted := hostedConfig(t)
			cfg := Config{
				Dev: true, Store: "bolt", StateDir: t.TempDir(), Listen: []string{"unix:///tmp/x.sock"},
				RegistryMirrors: map[string]string{"docker.io": "http://127.0.0.1:5055"}, AgentBinary: hosted.AgentBinary,
			}
			tt.change(&cfg)
			err := cfg.validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
