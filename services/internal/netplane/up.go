package netplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Up gives a starting container addresses on its networks (or refreshes
// its endpoints: it is idempotent) and returns its view (engine.Networks).
func (p *Plane) Up(ctx context.Context, c *engine.Container) (*proto.NetworkView, error) {
	spec, err := p.spec(ctx, c)
	if err != nil {
		return nil, err
	}
	// A starting container has no processes yet, and its view comes from
	// the networks it joins here alone: it needs no list of the others.
	starting := !running(c)
	if spec.Client != "" && p.cfg.Published != nil {
		// Its view lists its siblings' published ports (viewOf): their
		// read, when not cached, goes on while its networks are written.
		go p.cfg.Published(c.Namespace, spec.Client)
	}
	// The ports its processes listen on, as reported on a network it is
	// on already: a network it joins (docker network connect) gets them
	// too, without waiting for a change.
	var listening []int
	if nets, err := p.listUnless(ctx, c.Namespace, starting); err == nil {
		for _, n := range nets {
			if ep := n.Endpoints[c.ID]; ep != nil && len(ep.Listening) > 0 {
				listening = ep.Listening
				break
			}
		}
	}
	var touched []*Network
	for name, es := range c.Networks {
		id := es.NetworkID
		if id == "" {
			n, err := p.Network(ctx, c.Namespace, name)
			if err != nil {
				return nil, err
			}
			id = n.ID
		}
		var want netip.Addr
		if es.IPAMConfig != nil {
			want = es.IPAMConfig.IPv4Address
		}
		ep := &Endpoint{Container: c.ID, Name: c.Name, Aliases: es.Aliases, Ports: declaredPorts(c, network.TCP), UDPPorts: declaredPorts(c, network.UDP), Spec: spec}
		none, joined := false, false
		out, err := p.update(ctx, c.Namespace, id, func(n *Network) error {
			if none = n.Subnet == ""; none {
				return nil // none: no address, no peers (and no write)
			}
			old := n.Endpoints[c.ID]
			joined = old == nil
			if old != nil {
				ep.ID, ep.IP, ep.MAC, ep.Attached, ep.Listening = old.ID, old.IP, old.MAC, old.Attached, old.Listening
			} else {
				a, err := allocate(n, want)
				if err != nil {
					return err
				}
				ep.ID, ep.IP, ep.Attached, ep.Listening = randomID(), a.String(), time.Now().UTC(), listening
				ep.MAC = macFor(a)
				if es.MacAddress != nil && len(es.MacAddress) > 0 {
					ep.MAC = es.MacAddress.String()
				}
			}
			if n.Endpoints == nil {
				n.Endpoints = map[string]*Endpoint{}
			}
			n.Endpoints[c.ID] = ep
			return nil
		})
		if errors.Is(err, engine.ErrNotFound) {
			return nil, engine.Errorf(engine.KindNotFound, "network %s not found", name)
		}
		if err != nil {
			return nil, fmt.Errorf("join network %s: %w", name, err)
		}
		if !none {
			touched = append(touched, out)
		}
		if joined { // as docker: a network event each time a container joins
			p.publish(out, "connect", map[string]string{"container": c.ID})
		}
	}
	var nets []*Network
	if starting {
		// Its view is built from the networks just written, and only
		// networks with other members need new views (its own goes in
		// its Start).
		nets = touched
		p.cacheUpdated(c.Namespace, touched...)
		p.updated(c.Namespace, withOthers(touched, c.ID)...)
	} else {
		p.updated(c.Namespace, touched...)
		var err error
		if nets, err = p.list(ctx, c.Namespace, false); err != nil {
			return nil, err
		}
	}
	v, h := p.viewOf(c.Namespace, c.ID, indexes(nets), spec)
	if starting {
		p.noteStarted(c.ID, touched)
		// Starting: the view goes in its Start. A running container
		// (connect, rename, recovery) gets it from the pusher.
		p.push.sentView(c.ID, h)
	} else {
		p.push.forget(c.ID)
	}
	// Its peers (and a running container itself) have their new views
	// before Up returns: once docker run or network connect answers, the
	// others resolve and reach it, as under docker.
	ids := make([]string, 0, len(nets))
	for _, n := range nets {
		if n.Endpoints[c.ID] != nil && (!starting || len(withOthers([]*Network{n}, c.ID)) > 0) {
			ids = append(ids, n.ID)
		}
	}
	if len(ids) > 0 {
		p.push.flush(ctx, c.Namespace, ids...)
	}
	return &v, nil
}

// noteStarted records the ports on the endpoints a starting container
// got (on the networks touched), when they are the same on each.
func (p *Plane) noteStarted(id string, touched []*Network) {
	var ports []int
	for i, n := range touched {
		ep := n.Endpoints[id]
		if ep == nil {
			return
		}
		if i > 0 && !slices.Equal(ep.Listening, ports) {
			return
		}
		ports = ep.Listening
	}
	p.mu.Lock()
	if len(p.started) >= maxStarted {
		// Containers another control plane stopped leave no Down here:
		// an entry only saves reads, so the lot may go.
		clear(p.started)
	}
	p.started[id] = ports
	p.mu.Unlock()
}

// maxStarted bounds the containers noteStarted remembers.
const maxStarted = 10000

// firstReportKnown reports whether container id's Listening report of
// ports is the first since this process started it, with the ports its
// endpoints have, and its agent has every view sent since the start: the
// report changes nothing, in the store or in any view.
func (p *Plane) firstReportKnown(id string, ports []int) bool {
	p.mu.Lock()
	had, ok := p.started[id]
	delete(p.started, id)
	p.mu.Unlock()
	return ok && slices.Equal(had, ports) && p.push.upToDate(id)
}

// listUnless is list(ctx, ns, false), or nothing when skip.
func (p *Plane) listUnless(ctx context.Context, ns string, skip bool) ([]*Network, error) {
	if skip {
		return nil, nil
	}
	return p.list(ctx, ns, false)
}

// withOthers returns the networks of nets that have a member other than
// container id: those whose members' views a change of id's changes.
func withOthers(nets []*Network, id string) []*Network {
	var out []*Network
	for _, n := range nets {
		for m := range n.Endpoints {
			if m != id {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// spec is the part of c's view its networks do not give.
func (p *Plane) spec(ctx context.Context, c *engine.Container) (*Spec, error) {
	hc := c.HostConfig
	s := &Spec{Hostname: c.Config.Hostname, Domainname: c.Config.Domainname, DNSSearch: hc.DNSSearch, DNSOptions: hc.DNSOptions, Client: c.Client}
	for _, a := range hc.DNS {
		s.DNSServers = append(s.DNSServers, a.String())
	}
	for _, h := range hc.ExtraHosts {
		name, ip, ok := splitExtraHost(h)
		if !ok {
			continue
		}
		if ip == "host-gateway" {
			ip, s.HostGateway = HostGateway.String(), true
		}
		s.ExtraHosts = append(s.ExtraHosts, proto.HostEntry{IP: ip, Names: []string{name}})
	}
	for _, l := range hc.Links {
		name, alias := SplitLink(l)
		t, err := p.cfg.Containers.GetContainer(ctx, c.Namespace, name)
		if err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return nil, engine.Errorf(engine.KindNotFound, "could not get container for %s", name)
			}
			return nil, fmt.Errorf("link %s: %w", l, err)
		}
		s.Links = append(s.Links, Link{Container: t.ID, Name: t.Name, Alias: alias})
	}
	for _, es := range c.Networks {
		for _, l := range es.Links { // links given per user network
			name, alias := SplitLink(l)
			// As docker, the target may come later: it is found by
			// name on the network whenever views are built.
			lk := Link{Name: name, Alias: alias, ByName: true}
			if t, err := p.cfg.Containers.GetContainer(ctx, c.Namespace, name); err == nil {
				lk.Container, lk.Name = t.ID, t.Name
			}
			s.Links = append(s.Links, lk)
		}
	}
	return s, nil
}

// declaredPorts are c's ports of protocol ipp that peers reach without
// its processes having to be seen listening: ExposedPorts and published
// ports.
func declaredPorts(c *engine.Container, ipp network.IPProtocol) []int {
	set := map[int]bool{}
	add := func(p network.Port) {
		if p.Proto() == ipp && p.Num() > 0 {
			set[int(p.Num())] = true
		}
	}
	for p := range c.Config.ExposedPorts {
		add(p)
	}
	for p := range c.HostConfig.PortBindings {
		add(p)
	}
	out := make([]int, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// Down releases container c's addresses on its networks (engine.Networks):
// a read of each of its networks, and a write where it had an address.
func (p *Plane) Down(ctx context.Context, c *engine.Container) error {
	var touched []*Network
	for name, es := range c.Networks {
		if es.NetworkID == "" {
			continue
		}
		had := false
		out, err := p.update(ctx, c.Namespace, es.NetworkID, func(n *Network) error {
			_, had = n.Endpoints[c.ID]
			delete(n.Endpoints, c.ID)
			return nil
		})
		if errors.Is(err, engine.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("leave network %s: %w", name, err)
		}
		if had {
			touched = append(touched, out)
			p.publish(out, "disconnect", map[string]string{"container": c.ID})
		}
	}
	p.push.forget(c.ID)
	p.mu.Lock()
	delete(p.started, c.ID)
	p.mu.Unlock()
	// Only networks it leaves members on need new views.
	p.cacheUpdated(c.Namespace, touched...)
	p.updated(c.Namespace, withOthers(touched, c.ID)...)
	return nil
}

// Listening records the ports container id's processes listen on
// (engine.Network). It returns at once: the hub calls it while reading the
// agent's frames. Reports of one container are recorded in order, a
// report superseded while waiting is skipped.
func (p *Plane) Listening(_ context.Context, ns, id string, ports []int) {
	p.mu.Lock()
	_, busy := p.listening[id]
	p.listening[id] = listenReport{ns: ns, ports: slices.Clone(ports)}
	p.mu.Unlock()
	if busy {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			p.mu.Lock()
			r, ok := p.listening[id]
			if !ok || r.done {
				delete(p.listening, id)
				p.mu.Unlock()
				return
			}
			p.listening[id] = listenReport{done: true}
			p.mu.Unlock()
			if err := p.recordListening(p.ctx, r.ns, id, r.ports); err != nil && p.ctx.Err() == nil {
				p.log.Warn("record listening ports", "container", id, "err", err)
			}
		}
	}()
}

// listenReport is a container's latest Listening report; done marks one
// being recorded with nothing newer.
type listenReport struct {
	ns    string
	ports []int
	done  bool
}

// recordListening stores ports in each of container id's endpoints and
// has its peers' views updated.
func (p *Plane) recordListening(ctx context.Context, ns, id string, ports []int) error {
	sort.Ints(ports)
	ports = slices.Compact(ports)
	if p.firstReportKnown(id, ports) {
		return nil
	}
	nets, err := p.list(ctx, ns, false)
	if err != nil {
		return err
	}
	// Every network of the container is marked, changed or not: a report
	// also comes after each reconnect of its agent, which then gets any
	// view it missed.
	var touched []*Network
	for _, n := range nets {
		ep := n.Endpoints[id]
		if ep == nil {
			continue
		}
		if slices.Equal(ep.Listening, ports) {
			touched = append(touched, n)
			continue
		}
		out, err := p.update(ctx, ns, n.ID, func(n *Network) error {
			if ep := n.Endpoints[id]; ep != nil {
				ep.Listening = ports
			}
			return nil
		})
		if errors.Is(err, engine.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("record listening ports on %s: %w", n.Name, err)
		}
		touched = append(touched, out)
	}
	p.updated(ns, touched...)
	return nil
}

// Refresh sends container id its current view again (engine.Networks).
func (p *Plane) Refresh(ctx context.Context, ns, id string) error {
	p.push.forget(id)
	nets, err := p.list(ctx, ns, false)
	if err != nil {
		return err
	}
	var ids []string
	for _, n := range nets {
		if n.Endpoints[id] != nil {
			ids = append(ids, n.ID)
		}
	}
	p.push.mark(ns, ids...)
	return nil
}
