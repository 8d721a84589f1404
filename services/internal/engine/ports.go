package engine

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Published ports (docker run -p, -P) are bound on the machine of the
// client a container was created through (Container.Client): by the
// forwarder, or by the --dev control plane for its own socket's clients.
// The engine decides what is published and when; Ports (package publish)
// binds them and carries the connections.

// Published returns the ports a container publishes, with the bindings
// asked for, as Docker decides them: the ports of ExposedPorts (the CLI
// adds every -p port there) that have PortBindings, and with
// PublishAllPorts every exposed port (on a free host port unless bound).
// A binding's HostPort is "" (a free port), a port, or a range "A-B".
func Published(cfg *container.Config, hc *container.HostConfig) network.PortMap {
	if cfg == nil || hc == nil {
		return nil
	}
	out := network.PortMap{}
	for p := range cfg.ExposedPorts {
		bs := hc.PortBindings[p]
		switch {
		case len(bs) > 0:
			out[p] = append([]network.PortBinding(nil), bs...)
		case hc.PublishAllPorts:
			out[p] = []network.PortBinding{{}}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkPorts refuses at create what Sockerless cannot publish: SCTP
// ports, malformed host ports, and published ports for a client with
// nothing on its machine to bind them (client "": plain TCP to the
// control plane).
func (e *Engine) checkPorts(cfg *container.Config, hc *container.HostConfig, client string) error {
	for p := range hc.PortBindings {
		if p.Proto() != network.TCP && p.Proto() != network.UDP {
			return Errorf(KindInvalid, "published port %s: only TCP and UDP ports can be published (SCTP is not supported)", p)
		}
	}
	pub := Published(cfg, hc)
	for p, bs := range pub {
		if p.Proto() != network.TCP && p.Proto() != network.UDP {
			return Errorf(KindInvalid, "published port %s: only TCP and UDP ports can be published (SCTP is not supported)", p)
		}
		for _, b := range bs {
			if _, _, err := HostPortRange(b.HostPort); err != nil {
				return Errorf(KindInvalid, "published port %s: %v", p, err)
			}
		}
	}
	if len(pub) == 0 {
		return nil
	}
	if e.cfg.Ports == nil {
		return Errorf(KindInvalid, "published ports (-p, -P) are not available on this control plane")
	}
	if client == "" {
		return Errorf(KindInvalid, "published ports (-p, -P) need the Sockerless forwarder (or the --dev control plane's unix socket): they are bound on the client's machine, and this client talks to the control plane directly")
	}
	return nil
}

// HostPortRange parses a binding's HostPort: "" or "0" (any free port:
// 0, 0, as Docker's allocator takes 0; testcontainers-go sends it), a
// port, or a range "A-B".
func HostPortRange(s string) (lo, hi int, err error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err = strconv.Atoi(a)
	if err == nil && isRange {
		hi, err = strconv.Atoi(b)
	} else {
		hi = lo
	}
	if err != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("invalid host port %q", s)
	}
	return lo, hi, nil
}

// publishPorts binds c's published ports for run. A port that cannot be
// bound fails the start as Docker's does: 500 with Docker's text.
func (e *Engine) publishPorts(ctx context.Context, c *Container, run uint32) (network.PortMap, error) {
	if len(Published(c.Config, c.HostConfig)) == 0 {
		return nil, nil
	}
	if e.cfg.Ports == nil {
		return nil, Errorf(KindInvalid, "published ports (-p, -P) are not available on this control plane")
	}
	return e.cfg.Ports.Publish(ctx, c, run)
}

// releasePorts lets go of the host ports that run (and any earlier run)
// of c published, in the background: the client's machine may be slow or
// away, and the run tag keeps a late release from touching a later run's
// ports.
func (e *Engine) releasePorts(c *Container, run uint32) {
	if e.cfg.Ports == nil || len(Published(c.Config, c.HostConfig)) == 0 {
		return
	}
	cc := *c
	e.goBackground(func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := e.cfg.Ports.Unpublish(rctx, &cc, run); err != nil && ctx.Err() == nil {
			e.log.Warn("release published ports", "container", cc.ID, "err", err)
		}
	})
}

// PortsShown is NetworkSettings.Ports as Docker shows it: while the
// container runs, every exposed port, with its bindings if published (null
// if not); otherwise empty (never null).
func PortsShown(c *Container) network.PortMap {
	out := network.PortMap{}
	if !running(c) {
		return out
	}
	for p := range c.Config.ExposedPorts {
		out[p] = nil
	}
	for p, bs := range c.Ports {
		out[p] = bs
	}
	return out
}

// PortSummaries is docker ps's Ports of c: the bindings, then exposed
// ports without one, by container port.
func PortSummaries(c *Container) []container.PortSummary {
	out := []container.PortSummary{}
	for p, bs := range PortsShown(c) {
		if len(bs) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bs {
			n, _ := strconv.Atoi(b.HostPort)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(n), Type: string(p.Proto())})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return ipOrder(a.IP) < ipOrder(b.IP)
	})
	return out
}

// ipOrder puts IPv4 before IPv6, as Docker lists bindings.
func ipOrder(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "2"
	case a.Is4():
		return "0" + a.String()
	}
	return "1" + a.String()
}
