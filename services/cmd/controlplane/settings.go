package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/sockerless/sockerless/agent/jsonlog"
	"github.com/sockerless/sockerless/services/internal/controlplane"
	"github.com/sockerless/sockerless/services/internal/portbind"
	"github.com/sockerless/sockerless/services/internal/settings"
)

// applyFunc stores one value of a setting in the configuration.
type applyFunc func(c *controlplane.Config, v string) error

func duration(dst *time.Duration) applyFunc {
	return func(_ *controlplane.Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*dst = d
		return nil
	}
}

// nonNegative stores a number ≥ 0.
func nonNegative(dst *float64) applyFunc {
	return func(_ *controlplane.Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) {
			return fmt.Errorf("want a number ≥ 0, got %q", v)
		}
		*dst = f
		return nil
	}
}

// byteSize stores a size such as 512m or 8g (docker's units), 0 for none.
func byteSize(dst *int64) applyFunc {
	return func(_ *controlplane.Config, v string) error {
		n, err := units.RAMInBytes(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a size such as 512m or 8g, got %q", v)
		}
		*dst = n
		return nil
	}
}

// text stores a value as is.
func text(dst *string) applyFunc {
	return func(_ *controlplane.Config, v string) error { *dst = v; return nil }
}

// count sets *dst to a whole number of at least min.
func count(dst *int, min int) applyFunc {
	return func(_ *controlplane.Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return fmt.Errorf("want a count ≥ %d, got %q", min, v)
		}
		*dst = n
		return nil
	}
}

// appliers says where each setting of settings.All goes, by flag name.
func appliers(c *controlplane.Config, dev *bool, level *slog.Level) map[string]applyFunc {
	return map[string]applyFunc{
		settings.Dev: func(_ *controlplane.Config, v string) error {
			*dev = v == "" || v == "true" || v == "1"
			return nil
		},
		settings.Store: func(c *controlplane.Config, v string) error {
			if v != "bolt" && v != "firestore" {
				return fmt.Errorf("want bolt or firestore, got %q", v)
			}
			c.Store = v
			return nil
		},
		settings.StateDir: text(&c.StateDir),
		settings.Listen: func(c *controlplane.Config, v string) error {
			c.Listen = append(c.Listen, splitList(v)...)
			return nil
		},
		settings.Token: text(&c.Token),
		settings.RegistryMirror: func(c *controlplane.Config, v string) error {
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
		},
		settings.AgentBinary:    text(&c.AgentBinary),
		settings.CallbackURL:    text(&c.CallbackURL),
		settings.Linger:         duration(&c.Linger),
		settings.BootTimeout:    duration(&c.BootTimeout),
		settings.OperationDelay: duration(&c.OperationDelay),
		settings.StoreLatency:   duration(&c.StoreLatency),
		settings.GCPProject:     text(&c.Project),
		settings.GCPRegion:      text(&c.Region),
		settings.ServiceAccount: text(&c.ServiceAccount),
		settings.GCPEndpoint:    text(&c.GCPEndpoint),
		settings.GCPSimBinary:   text(&c.GCPSimBinary),
		settings.SimProfile: func(c *controlplane.Config, v string) error {
			if v != "fast" && v != "google" {
				return fmt.Errorf("want fast or google, got %q", v)
			}
			c.SimProfile = v
			return nil
		},
		settings.SimTimeScale: func(c *controlplane.Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 {
				return fmt.Errorf("want a positive number, got %q", v)
			}
			c.SimTimeScale = f
			return nil
		},
		settings.PrewarmImage: func(c *controlplane.Config, v string) error {
			c.PrewarmImages = append(c.PrewarmImages, splitList(v)...)
			return nil
		},
		settings.PoolSize:      count(&c.PoolSize, 0),
		settings.MaxInstances:  count(&c.MaxInstances, 1),
		settings.ImageRepo:     text(&c.TargetRepo),
		settings.VolumeBucket:  text(&c.VolumeBucket),
		settings.VolumeNFS:     text(&c.VolumeNFS),
		settings.VolumeNFSDir:  text(&c.VolumeNFSDir),
		settings.VolumeNetwork: text(&c.VolumeNetwork),
		settings.VolumeSubnet:  text(&c.VolumeSubnet),
		settings.LogLevel: func(_ *controlplane.Config, v string) error {
			return level.UnmarshalText([]byte(v))
		},
		settings.QuotaRunning:   count(&c.Quota.Running, 0),
		settings.QuotaVCPU:      nonNegative(&c.Quota.VCPU),
		settings.QuotaMemory:    byteSize(&c.Quota.Memory),
		settings.QuotaLogBytes:  byteSize(&c.Quota.LogBytes),
		settings.RateLimit:      count(&c.RateLimit, 0),
		settings.PriceVCPU:      nonNegative(&c.Prices.VCPUSecond),
		settings.PriceGiB:       nonNegative(&c.Prices.GiBSecond),
		settings.PriceRequest:   nonNegative(&c.Prices.Invocation),
		settings.GoogleAudience: text(&c.GoogleAudience),
		settings.MaxBody: func(c *controlplane.Config, v string) error {
			n, err := parseBytes(v)
			c.MaxBodyBytes = n
			return err
		},
		settings.IdleTimeout: duration(&c.IdleTimeout),
		settings.RegistryAllow: func(c *controlplane.Config, v string) error {
			c.RegistryAllow = append(c.RegistryAllow, splitList(v)...)
			return nil
		},
		settings.ExposeHostPort: func(c *controlplane.Config, v string) error {
			ports, err := portbind.ParsePorts(splitList(v))
			if err != nil {
				return err
			}
			c.ExposeHostPorts = append(c.ExposeHostPorts, ports...)
			return nil
		},
	}
}

// parseBytes reads a size: bytes, or a number with KiB, MiB or GiB.
func parseBytes(v string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			v, mult = n, m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("want a positive size such as 4MiB, got %q", v)
	}
	return n * mult, nil
}

// splitList reads a repeatable setting's value: comma-separated in its
// environment twin.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// HostedMark ends the --help line of every setting a hosted deployment
// must set (settings.Setting.Hosted); deploy's tests read --help for it.
const HostedMark = "[hosted: required]"

// helpLine is the --help text of a setting: its meaning, every variable
// that sets it and, for a hosted setting, HostedMark.
func helpLine(s settings.Setting) string {
	line := s.Usage + " (env " + strings.Join(s.Names(), ", ") + ")"
	if s.Hosted {
		line += " " + HostedMark
	}
	return line
}

// multi collects every value of a flag.
type multi struct{ vals *[]string }

func (m multi) String() string     { return "" }
func (m multi) Set(v string) error { *m.vals = append(*m.vals, v); return nil }

// parse reads flags, then the env twin (or a seed alias) of each flag not
// given, then the default. Outside --dev with no --listen it listens on
// Cloud Run's $PORT.
func parse(args []string, getenv func(string) string) (controlplane.Config, *slog.Logger, error) {
	return parseTo(args, getenv, os.Stderr)
}

// parseTo is parse with --help and flag errors written to out.
func parseTo(args []string, getenv func(string) string, out io.Writer) (controlplane.Config, *slog.Logger, error) {
	var cfg controlplane.Config
	var dev bool
	level := slog.LevelInfo
	table := settings.All()
	apply := appliers(&cfg, &dev, &level)
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	fs.SetOutput(out)
	given := map[string]*[]string{}
	for _, s := range table {
		if apply[s.Flag] == nil {
			return cfg, nil, fmt.Errorf("setting --%s has no place in the configuration", s.Flag)
		}
		vals := new([]string)
		given[s.Flag] = vals
		usage := helpLine(s)
		if s.Bool {
			fs.BoolFunc(s.Flag, usage, func(v string) error { *vals = append(*vals, v); return nil })
			continue
		}
		fs.Var(multi{vals}, s.Flag, usage)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	if fs.NArg() > 0 {
		return cfg, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range table {
		vals := *given[s.Flag]
		if len(vals) == 0 {
			for _, env := range s.Names() {
				if v := getenv(env); v != "" {
					vals = []string{v}
					break
				}
			}
		}
		if len(vals) == 0 && s.Default != "" {
			vals = []string{s.Default}
		}
		if len(vals) > 1 && !s.Repeat {
			vals = vals[len(vals)-1:]
		}
		for _, v := range vals {
			if err := apply[s.Flag](&cfg, v); err != nil {
				return cfg, nil, fmt.Errorf("%s: %w", s.Ref(), err)
			}
		}
	}
	cfg.Dev = dev
	if port := getenv(settings.PortEnv); !dev && len(cfg.Listen) == 0 && port != "" {
		cfg.Listen = []string{"tcp://0.0.0.0:" + port}
	}
	log := jsonlog.New(os.Stderr, level)
	cfg.Logger = log
	return cfg, log, nil
}
