package netplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// LinkEnv returns the environment variables docker gives a container on
// the default bridge for each of its legacy links (--link name:alias):
// ALIAS_NAME, ALIAS_PORT and ALIAS_PORT_<port>_<proto>[_ADDR|_PORT|_PROTO]
// per exposed port (with _START/_END for runs of consecutive ports), and
// ALIAS_ENV_<var> per variable of the linked container. Call it after Up:
// the addresses are the linked containers' on the bridge. A linked
// container that does not run is refused, as docker refuses it.
func (p *Plane) LinkEnv(ctx context.Context, c *engine.Container) ([]string, error) {
	if c.HostConfig == nil || len(c.HostConfig.Links) == 0 {
		return nil, nil
	}
	if _, onBridge := c.Networks[Bridge]; !onBridge {
		return nil, nil // links on user networks are aliases only
	}
	bridge, err := p.Network(ctx, c.Namespace, Bridge)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, l := range c.HostConfig.Links {
		name, alias := SplitLink(l)
		t, err := p.cfg.Containers.GetContainer(ctx, c.Namespace, name)
		if err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return nil, engine.Errorf(engine.KindNotFound, "could not get container for %s", name)
			}
			return nil, fmt.Errorf("link %s: %w", l, err)
		}
		ep := bridge.Endpoints[t.ID]
		if !running(t) || ep == nil {
			return nil, engine.Errorf(engine.KindConflict, "Cannot link to a non running container: /%s AS /%s/%s", t.Name, c.Name, alias)
		}
		env = append(env, linkVars(alias, "/"+c.Name+"/"+alias, ep.IP, exposed(t), t.Config.Env)...)
	}
	return env, nil
}

// SplitLink splits a legacy link "name:alias" (or "/name:/parent/alias",
// as docker shows it); the alias defaults to the name.
func SplitLink(l string) (name, alias string) {
	name, alias, _ = strings.Cut(l, ":")
	name = strings.TrimPrefix(name, "/")
	if alias == "" {
		alias = name
	}
	if i := strings.LastIndexByte(alias, '/'); i >= 0 {
		alias = alias[i+1:]
	}
	return name, alias
}

// exposed lists a container's exposed ports (ExposedPorts and published
// ones), by number, TCP before UDP for the same number.
func exposed(c *engine.Container) []network.Port {
	set := map[network.Port]bool{}
	for p := range c.Config.ExposedPorts {
		set[p] = true
	}
	if c.HostConfig != nil {
		for p := range c.HostConfig.PortBindings {
			set[p] = true
		}
	}
	out := make([]network.Port, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Num() != out[j].Num() {
			return out[i].Num() < out[j].Num()
		}
		return out[i].Proto() == network.TCP && out[j].Proto() != network.TCP
	})
	return out
}

// linkVars are the variables of one link: alias names the link, name is
// its full name ("/parent/alias"), ip the linked container's address.
func linkVars(alias, name, ip string, ports []network.Port, childEnv []string) []string {
	a := strings.ReplaceAll(strings.ToUpper(alias), "-", "_")
	var env []string
	url := func(p network.Port) string {
		return fmt.Sprintf("%s://%s:%d", p.Proto(), ip, p.Num())
	}
	key := func(p network.Port) string {
		return fmt.Sprintf("%s_PORT_%d_%s", a, p.Num(), strings.ToUpper(string(p.Proto())))
	}
	if len(ports) > 0 {
		env = append(env, a+"_PORT="+url(ports[0]))
	}
	// A run of three or more consecutive ports of one protocol gets
	// variables of its own, keyed by its first port.
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1].Proto() == ports[i].Proto() && ports[j+1].Num() == ports[j].Num()+1 {
			j++
		}
		if j > i+1 { // three ports or more, as docker
			first, last, k := ports[i], ports[j], key(ports[i])
			env = append(env,
				k+"_START="+url(first),
				k+"_ADDR="+ip,
				k+"_PROTO="+string(first.Proto()),
				k+"_PORT_START="+strconv.Itoa(int(first.Num())),
				k+"_END="+url(last),
				k+"_PORT_END="+strconv.Itoa(int(last.Num())))
		}
		i = j + 1
	}
	for _, p := range ports {
		k := key(p)
		env = append(env, k+"="+url(p), k+"_PORT="+strconv.Itoa(int(p.Num())))
		if !slices.Contains(env, k+"_ADDR="+ip) { // a run's first port has these already
			env = append(env, k+"_ADDR="+ip, k+"_PROTO="+string(p.Proto()))
		}
	}
	env = append(env, a+"_NAME="+name)
	for _, kv := range childEnv {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" { // docker leaves these out
			continue
		}
		env = append(env, a+"_ENV_"+k+"="+v)
	}
	return slices.Clip(env)
}

// RemoveLink removes the legacy link "parent/alias" (docker rm --link,
// DELETE /containers/{parent}/{alias}?link=true): the parent keeps
// running, and its names no longer include the alias.
func (p *Plane) RemoveLink(ctx context.Context, ns, ref string) error {
	full := strings.TrimPrefix(ref, "/")
	parentRef, alias, ok := cutLast(full, '/')
	if !ok {
		return engine.Errorf(engine.KindConflict, "Conflict, cannot remove the default link name of the container")
	}
	parent, err := p.findContainer(ctx, ns, parentRef)
	if err != nil {
		if engine.KindOf(err) == engine.KindNotFound {
			return engine.Errorf(engine.KindNotFound, "Cannot get parent /%s for link name /%s", parentRef, full)
		}
		return err
	}
	drop := func(links []string) ([]string, bool) {
		out, found := links[:0:0], false
		for _, l := range links {
			if _, a := SplitLink(l); a == alias {
				found = true
				continue
			}
			out = append(out, l)
		}
		return out, found
	}
	c, err := p.cfg.Containers.UpdateContainer(ctx, ns, parent.ID, func(c *engine.Container) error {
		found := false
		if c.HostConfig != nil {
			if c.HostConfig.Links, found = drop(c.HostConfig.Links); len(c.HostConfig.Links) == 0 {
				c.HostConfig.Links = nil // docker shows null
			}
		}
		for _, es := range c.Networks {
			var f bool
			if es.Links, f = drop(es.Links); f {
				found = true
			}
		}
		if !found {
			return engine.Errorf(engine.KindNotFound, "No such container: %s", full)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if running(c) { // its hosts and names lose the alias
		if _, err := p.Up(ctx, c); err != nil {
			return fmt.Errorf("remove link %s: %w", full, err)
		}
	}
	return nil
}

// cutLast cuts s around the last sep.
func cutLast(s string, sep byte) (before, after string, found bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
