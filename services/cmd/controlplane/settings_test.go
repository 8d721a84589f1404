package main

import (
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/controlplane"
	"github.com/sockerless/sockerless/services/internal/settings"
)

// parseWithOutput runs parse with the flag set's output sent to w.
func parseWithOutput(args []string, w io.Writer) (controlplane.Config, *slog.Logger, error) {
	return parseTo(args, func(string) string { return "" }, w)
}

func TestParseFlagsEnvAndAliases(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c configView)
	}{
		{
			name: "flags as the issue writes them",
			args: []string{"--dev", "--state-dir", "/s", "--listen", "unix:///a.sock", "--listen", "tcp://127.0.0.1:1", "--registry-mirror", "docker.io=http://127.0.0.1:5055", "--token", "T"},
			check: func(t *testing.T, c configView) {
				if !c.Dev || c.StateDir != "/s" || c.Token != "T" || !reflect.DeepEqual(c.Listen, []string{"unix:///a.sock", "tcp://127.0.0.1:1"}) || c.Mirrors["docker.io"] != "http://127.0.0.1:5055" {
					t.Fatalf("%+v", c)
				}
				if c.Linger != 60*time.Second || c.BootTimeout != 2*time.Minute || c.Region != "us-central1" {
					t.Fatalf("defaults: %+v", c)
				}
			},
		},
		{
			name: "env twins",
			env:  map[string]string{"SOCKERLESS_TOKEN": "E", "SOCKERLESS_STATE_DIR": "/e", "SOCKERLESS_LISTEN": "unix:///x,tcp://127.0.0.1:2", "SOCKERLESS_LINGER": "5s", "SOCKERLESS_DEV": "true"},
			check: func(t *testing.T, c configView) {
				if c.Token != "E" || c.StateDir != "/e" || len(c.Listen) != 2 || c.Linger != 5*time.Second || !c.Dev {
					t.Fatalf("%+v", c)
				}
			},
		},
		{
			name: "flag wins over env",
			args: []string{"--token", "F"},
			env:  map[string]string{"SOCKERLESS_TOKEN": "E"},
			check: func(t *testing.T, c configView) {
				if c.Token != "F" {
					t.Fatalf("token %q", c.Token)
				}
			},
		},
		{
			name: "seed names are accepted",
			env:  map[string]string{"SOCKERLESS_GCF_PROJECT": "p", "SOCKERLESS_GCF_REGION": "europe-west1", "SOCKERLESS_GCF_SERVICE_ACCOUNT": "fn@p.iam", "SOCKERLESS_CALLBACK_URL": "wss://cp"},
			check: func(t *testing.T, c configView) {
				if c.Project != "p" || c.Region != "europe-west1" || c.ServiceAccount != "fn@p.iam" || c.CallbackURL != "wss://cp" {
					t.Fatalf("%+v", c)
				}
			},
		},
		{
			name: "outside dev without listen serves Cloud Run's PORT",
			env:  map[string]string{"PORT": "8080"},
			check: func(t *testing.T, c configView) {
				if !reflect.DeepEqual(c.Listen, []string{"tcp://0.0.0.0:8080"}) {
					t.Fatalf("listen %q", c.Listen)
				}
			},
		},
		{
			name: "an explicit listen wins over PORT",
			args: []string{"--listen", "tcp://127.0.0.1:9"},
			env:  map[string]string{"PORT": "8080"},
			check: func(t *testing.T, c configView) {
				if !reflect.DeepEqual(c.Listen, []string{"tcp://127.0.0.1:9"}) {
					t.Fatalf("listen %q", c.Listen)
				}
			},
		},
		{
			name: "dev ignores PORT",
			args: []string{"--dev"},
			env:  map[string]string{"PORT": "8080"},
			check: func(t *testing.T, c configView) {
				if len(c.Listen) != 0 {
					t.Fatalf("listen %q", c.Listen)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := parse(tt.args, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, configView{cfg.Dev, cfg.StateDir, cfg.Listen, cfg.Token, cfg.RegistryMirrors, cfg.Linger, cfg.BootTimeout, cfg.Project, cfg.Region, cfg.ServiceAccount, cfg.CallbackURL})
		})
	}
}

// configView names the fields the table checks.
type configView struct {
	Dev                             bool
	StateDir                        string
	Listen                          []string
	Token                           string
	Mirrors                         map[string]string
	Linger, BootTimeout             time.Duration
	Project, Region, ServiceAccount string
	CallbackURL                     string
}

func TestParseRejectsBadValuesNamingTheSetting(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--linger", "soon"}, "--linger (SOCKERLESS_LINGER)"},
		{[]string{"--registry-mirror", "nothing"}, "--registry-mirror (SOCKERLESS_REGISTRY_MIRROR)"},
		{[]string{"stray"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, _, err := parse(tt.args, func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEverySettingHasAPlaceAndNoPlaceIsUnnamed(t *testing.T) {
	var cfg controlplane.Config
	var dev bool
	var level slog.Level
	apply := appliers(&cfg, &dev, &level)
	table := settings.All()
	named := map[string]bool{}
	for _, s := range table {
		named[s.Flag] = true
		if apply[s.Flag] == nil {
			t.Errorf("setting --%s is in the table but parse has nowhere to put it", s.Flag)
		}
	}
	for flag := range apply {
		if !named[flag] {
			t.Errorf("parse applies --%s, which the settings table does not name", flag)
		}
	}
}

func TestHelpNamesEveryVariable(t *testing.T) {
	var out strings.Builder
	_, _, err := parseWithOutput([]string{"-h"}, &out)
	if err == nil {
		t.Fatal("-h parsed without error")
	}
	for _, s := range settings.All() {
		for _, name := range s.Names() {
			if !strings.Contains(out.String(), name) {
				t.Errorf("help does not name %s", name)
			}
		}
	}
}

func TestHelpMarksHostedSettings(t *testing.T) {
	var out strings.Builder
	if _, _, err := parseWithOutput([]string{"-h"}, &out); err == nil {
		t.Fatal("-h parsed without error")
	}
	// flag prints "  -name value\n    \tusage"; join each flag's lines.
	help := strings.ReplaceAll(out.String(), "\n    \t", " ")
	for _, s := range settings.All() {
		var line string
		for _, l := range strings.Split(help, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "-"+s.Flag+" ") || strings.TrimSpace(l) == "-"+s.Flag {
				line = l
			}
		}
		if line == "" {
			t.Errorf("help has no line for --%s", s.Flag)
			continue
		}
		if got := strings.Contains(line, HostedMark); got != s.Hosted {
			t.Errorf("--%s: help line marked hosted %v, want %v: %q", s.Flag, got, s.Hosted, line)
		}
	}
}
