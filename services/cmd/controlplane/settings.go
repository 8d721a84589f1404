package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sockerless/sockerless/services/internal/controlplane"
)

// setting is one row of the table of every setting: its flag, its env twin
// (SOCKERLESS_<FLAG>), the seed system's names it also accepts, and where
// it goes.
type setting struct {
	flag    string
	aliases []string // older env names with the same meaning
	usage   string
	def     string
	repeat  bool
	apply   func(c *controlplane.Config, v string) error
}

// envName is the env twin of a flag: --state-dir → SOCKERLESS_STATE_DIR.
func envName(flag string) string {
	return "SOCKERLESS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func duration(dst *time.Duration) func(*controlplane.Config, string) error {
	return func(_ *controlplane.Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*dst = d
		return nil
	}
}

// settings is the table of every control plane setting.
func settings(c *controlplane.Config, dev *bool, level *slog.Level) []setting {
	return []setting{
		{flag: "dev", usage: "run the whole local stack: embedded store, in-process gcpsim and registry", apply: func(_ *controlplane.Config, v string) error {
			*dev = v == "" || v == "true" || v == "1"
			return nil
		}},
		{flag: "store", def: "bolt", usage: "where state lives: bolt (embedded, one machine) or firestore", apply: func(c *controlplane.Config, v string) error {
			if v != "bolt" && v != "firestore" {
				return fmt.Errorf("want bolt or firestore, got %q", v)
			}
			c.Store = v
			return nil
		}},
		{flag: "state-dir", usage: "directory for the embedded store and local state", apply: func(c *controlplane.Config, v string) error { c.StateDir = v; return nil }},
		{flag: "listen", repeat: true, usage: "unix:///path (no token, guarded by file mode) or tcp://host:port (token required); repeatable; env: comma-separated", apply: func(c *controlplane.Config, v string) error {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					c.Listen = append(c.Listen, p)
				}
			}
			return nil
		}},
		{flag: "token", usage: "bearer token clients must send on TCP listeners", apply: func(c *controlplane.Config, v string) error { c.Token = v; return nil }},
		{flag: "registry-mirror", repeat: true, usage: "registry=URL, e.g. docker.io=http://127.0.0.1:5055; repeatable; env: comma-separated", apply: func(c *controlplane.Config, v string) error {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				k, u, ok := strings.Cut(p, "=")
				if !ok || k == "" || u == "" {
					return fmt.Errorf("want registry=URL, got %q", p)
				}
				if c.RegistryMirrors == nil {
					c.RegistryMirrors = map[string]string{}
				}
				c.RegistryMirrors[k] = u
			}
			return nil
		}},
		{flag: "agent-binary", usage: "static agent binary added to every image (default: 'agent' next to this binary)", apply: func(c *controlplane.Config, v string) error { c.AgentBinary = v; return nil }},
		{flag: "callback-url", aliases: []string{"SOCKERLESS_CALLBACK_URL"}, usage: "hub URL function instances dial back to (default: the first TCP listener)", apply: func(c *controlplane.Config, v string) error { c.CallbackURL = v; return nil }},
		{flag: "linger", def: "60s", usage: "how long an instance stays after its process exits (docker start/cp/exec of exited containers)", apply: duration(&c.Linger)},
		{flag: "boot-timeout", def: "2m", usage: "how long start waits for a new instance's agent to call back", apply: duration(&c.BootTimeout)},
		{flag: "operation-delay", def: "1s", usage: "dev: how long gcpsim's create/update operations take", apply: duration(&c.OperationDelay)},
		{flag: "gcp-project", aliases: []string{"SOCKERLESS_GCF_PROJECT"}, usage: "Google Cloud project of the functions", apply: func(c *controlplane.Config, v string) error { c.Project = v; return nil }},
		{flag: "gcp-region", aliases: []string{"SOCKERLESS_GCF_REGION"}, def: "us-central1", usage: "region of the functions", apply: func(c *controlplane.Config, v string) error { c.Region = v; return nil }},
		{flag: "service-account", aliases: []string{"SOCKERLESS_GCF_SERVICE_ACCOUNT"}, usage: "service account the functions run as", apply: func(c *controlplane.Config, v string) error { c.ServiceAccount = v; return nil }},
		{flag: "gcp-endpoint", usage: "gRPC host:port of a running gcpsim instead of Google (dev: empty starts one in-process)", apply: func(c *controlplane.Config, v string) error { c.GCPEndpoint = v; return nil }},
		{flag: "image-repo", usage: "repository for wrapped images, e.g. REGION-docker.pkg.dev/PROJECT/REPO/wrapped (dev: gcpsim's registry)", apply: func(c *controlplane.Config, v string) error { c.TargetRepo = v; return nil }},
		{flag: "log-level", def: "info", usage: "debug, info, warn or error", apply: func(_ *controlplane.Config, v string) error { return level.UnmarshalText([]byte(v)) }},
	}
}

// multi collects every value of a flag.
type multi struct{ vals *[]string }

func (m multi) String() string     { return "" }
func (m multi) Set(v string) error { *m.vals = append(*m.vals, v); return nil }

// parse reads flags, then the env twin (or a seed alias) of each flag not
// given, then the default.
func parse(args []string, getenv func(string) string) (controlplane.Config, *slog.Logger, error) {
	var cfg controlplane.Config
	var dev bool
	level := slog.LevelInfo
	table := settings(&cfg, &dev, &level)
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	given := map[string]*[]string{}
	for _, s := range table {
		vals := new([]string)
		given[s.flag] = vals
		usage := s.usage + " (env " + envName(s.flag) + ")"
		if s.flag == "dev" {
			fs.BoolFunc(s.flag, usage, func(v string) error { *vals = append(*vals, v); return nil })
			continue
		}
		fs.Var(multi{vals}, s.flag, usage)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	if fs.NArg() > 0 {
		return cfg, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range table {
		vals := *given[s.flag]
		if len(vals) == 0 {
			for _, env := range append([]string{envName(s.flag)}, s.aliases...) {
				if v := getenv(env); v != "" {
					vals = []string{v}
					break
				}
			}
		}
		if len(vals) == 0 && s.def != "" {
			vals = []string{s.def}
		}
		if len(vals) > 1 && !s.repeat {
			vals = vals[len(vals)-1:]
		}
		for _, v := range vals {
			if err := s.apply(&cfg, v); err != nil {
				return cfg, nil, fmt.Errorf("--%s (%s): %w", s.flag, envName(s.flag), err)
			}
		}
	}
	cfg.Dev = dev
	log := newLogger(level)
	cfg.Logger = log
	return cfg, log, nil
}
