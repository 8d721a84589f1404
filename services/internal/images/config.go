package images

import (
	"encoding/json"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// convertConfig turns an image's config into docker's container config.
// raw is the config blob: it is read again for what go-containerregistry's
// v1.Config drops (the health check's StartInterval).
func convertConfig(c v1.Config, raw []byte) *container.Config {
	out := &container.Config{
		User:        c.User,
		Env:         c.Env,
		Cmd:         c.Cmd,
		Entrypoint:  c.Entrypoint,
		WorkingDir:  c.WorkingDir,
		Labels:      c.Labels,
		StopSignal:  c.StopSignal,
		Volumes:     c.Volumes,
		Shell:       c.Shell,
		OnBuild:     c.OnBuild,
		ArgsEscaped: c.ArgsEscaped,
	}
	for p := range c.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			if out.ExposedPorts == nil {
				out.ExposedPorts = network.PortSet{}
			}
			out.ExposedPorts[port] = struct{}{}
		}
	}
	if h := c.Healthcheck; h != nil {
		out.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		var full struct {
			Config struct{ Healthcheck *container.HealthConfig } `json:"config"`
		}
		if json.Unmarshal(raw, &full) == nil && full.Config.Healthcheck != nil {
			out.Healthcheck.StartInterval = full.Config.Healthcheck.StartInterval
		}
	}
	return out
}
