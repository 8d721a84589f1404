package imageops

import (
	"encoding/json"
	"maps"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// mergeConfig fills what user leaves unset from base, as docker commit
// completes the request's config with the container's: user's
// environment variables first, then base's it does not set; ports,
// volumes and labels joined (user's label wins); base's command and
// entrypoint only if user sets neither.
func mergeConfig(user, base *container.Config) *container.Config {
	out := *user
	if base == nil {
		return &out
	}
	if out.User == "" {
		out.User = base.User
	}
	if len(base.ExposedPorts) > 0 {
		ports := network.PortSet{}
		maps.Copy(ports, base.ExposedPorts)
		maps.Copy(ports, out.ExposedPorts)
		out.ExposedPorts = ports
	}
	out.Env = engine.UserEnvFirst(out.Env, base.Env)
	if len(base.Labels) > 0 {
		labels := map[string]string{}
		maps.Copy(labels, base.Labels)
		maps.Copy(labels, out.Labels)
		out.Labels = labels
	}
	if len(out.Entrypoint) == 0 && len(out.Cmd) == 0 {
		out.Cmd, out.Entrypoint = base.Cmd, base.Entrypoint
	}
	if out.Healthcheck == nil {
		out.Healthcheck = base.Healthcheck
	}
	if out.WorkingDir == "" {
		out.WorkingDir = base.WorkingDir
	}
	if len(base.Volumes) > 0 {
		vols := map[string]struct{}{}
		maps.Copy(vols, base.Volumes)
		maps.Copy(vols, out.Volumes)
		out.Volumes = vols
	}
	if out.StopSignal == "" {
		out.StopSignal = base.StopSignal
	}
	if len(out.OnBuild) == 0 {
		out.OnBuild = base.OnBuild
	}
	return &out
}

// applyChanges applies docker's --change instructions (Dockerfile
// lines: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
// STOPSIGNAL, USER, VOLUME, WORKDIR) to cfg.
func applyChanges(cfg *container.Config, changes []string) error {
	for _, line := range changes {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "CMD":
			cfg.Cmd = commandForm(rest)
		case "ENTRYPOINT":
			cfg.Entrypoint = commandForm(rest)
		case "ENV":
			kvs, err := pairs(rest, "ENV")
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				cfg.Env = engine.UserEnvFirst([]string{kv[0] + "=" + kv[1]}, cfg.Env)
			}
		case "LABEL":
			kvs, err := pairs(rest, "LABEL")
			if err != nil {
				return err
			}
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			for _, kv := range kvs {
				cfg.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				port, err := network.ParsePort(p)
				if err != nil {
					return engine.Errorf(engine.KindInvalid, "invalid containerPort: %s", p)
				}
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = network.PortSet{}
				}
				cfg.ExposedPorts[port] = struct{}{}
			}
		case "VOLUME":
			vols := jsonList(rest)
			if vols == nil {
				vols = strings.Fields(rest)
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				cfg.Volumes[v] = struct{}{}
			}
		case "USER":
			cfg.User = rest
		case "WORKDIR":
			if !path.IsAbs(rest) {
				rest = path.Join("/", cfg.WorkingDir, rest)
			}
			cfg.WorkingDir = rest
		case "STOPSIGNAL":
			cfg.StopSignal = rest
		case "ONBUILD":
			cfg.OnBuild = append(cfg.OnBuild, rest)
		case "HEALTHCHECK":
			hc, err := healthcheck(rest)
			if err != nil {
				return err
			}
			cfg.Healthcheck = hc
		default:
			return engine.Errorf(engine.KindInvalid, "%s is not a valid change command", word)
		}
	}
	return nil
}

// commandForm reads CMD or ENTRYPOINT: a JSON list, or a shell command.
func commandForm(s string) []string {
	if l := jsonList(s); l != nil {
		return l
	}
	return []string{"/bin/sh", "-c", s}
}

func jsonList(s string) []string {
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var l []string
	if json.Unmarshal([]byte(s), &l) != nil {
		return nil
	}
	return l
}

// pairs reads ENV and LABEL: "k=v k2='v 2'", or the old "k v" form.
func pairs(s, instr string) ([][2]string, error) {
	words := splitWords(s)
	if len(words) == 0 {
		return nil, engine.Errorf(engine.KindInvalid, "%s requires at least one argument", instr)
	}
	if !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(unquote(strings.TrimSpace(v)))}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, engine.Errorf(engine.KindInvalid, "%s names can not be blank", instr)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on blanks outside quotes and removes the quotes.
func splitWords(s string) []string {
	var out []string
	var b strings.Builder
	var quote rune
	in := false
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case c == '\\' && i+1 < len(s) && quote != '\'':
			i++
			b.WriteByte(s[i])
			in = true
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, in = c, true
		case quote == 0 && (c == ' ' || c == '\t'):
			if in {
				out = append(out, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteRune(c)
			in = true
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out
}

func unquote(s string) string {
	if w := splitWords(s); len(w) == 1 {
		return w[0]
	}
	return s
}

// healthcheck reads HEALTHCHECK [--interval=D --timeout=D
// --start-period=D --start-interval=D --retries=N] CMD ... | NONE.
func healthcheck(s string) (*container.HealthConfig, error) {
	hc := &container.HealthConfig{}
	for strings.HasPrefix(s, "--") {
		opt, rest, _ := strings.Cut(s, " ")
		s = strings.TrimSpace(rest)
		k, v, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
		var err error
		switch k {
		case "interval":
			hc.Interval, err = time.ParseDuration(v)
		case "timeout":
			hc.Timeout, err = time.ParseDuration(v)
		case "start-period":
			hc.StartPeriod, err = time.ParseDuration(v)
		case "start-interval":
			hc.StartInterval, err = time.ParseDuration(v)
		case "retries":
			hc.Retries, err = strconv.Atoi(v)
		default:
			return nil, engine.Errorf(engine.KindInvalid, "unknown flag: --%s", k)
		}
		if err != nil {
			return nil, engine.Errorf(engine.KindInvalid, "HEALTHCHECK --%s: %v", k, err)
		}
	}
	word, rest, _ := strings.Cut(s, " ")
	switch strings.ToUpper(word) {
	case "NONE":
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	case "CMD":
		rest = strings.TrimSpace(rest)
		if l := jsonList(rest); l != nil {
			hc.Test = append([]string{"CMD"}, l...)
		} else {
			hc.Test = []string{"CMD-SHELL", rest}
		}
		return hc, nil
	}
	return nil, engine.Errorf(engine.KindInvalid, "Unknown type %q in HEALTHCHECK (try CMD)", word)
}
