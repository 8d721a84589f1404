package netplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// randomID returns a docker-style 64-hex-digit ID.
func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// Create makes a user network (docker network create). What Sockerless
// does not carry out is refused with a 400 naming it.
func (p *Plane) Create(ctx context.Context, ns string, req network.CreateRequest) (*Network, error) {
	n, _, err := p.create(ctx, ns, req, false)
	return n, err
}

// CreateNamesake is Create for a request that asked not to check for a
// duplicate name (CheckDuplicate false before API 1.44, which docker 20.10
// honours): a network whose name is taken is made all the same, and the
// name then picks neither (docker's "ambiguous" error) until one is gone.
// The warning is docker's when the name was taken.
func (p *Plane) CreateNamesake(ctx context.Context, ns string, req network.CreateRequest) (n *Network, warning string, err error) {
	n, owner, err := p.create(ctx, ns, req, true)
	if err == nil && owner != nil {
		warning = fmt.Sprintf("Network with name %s (id : %s) already exists", owner.Name, owner.ID)
	}
	return n, warning, err
}

// create makes the network; owner is the network whose name a namesake
// took.
func (p *Plane) create(ctx context.Context, ns string, req network.CreateRequest, namesake bool) (*Network, *Network, error) {
	if strings.TrimSpace(req.Name) == "" {
		return nil, nil, engine.Errorf(engine.KindInvalid, "invalid name: %s", req.Name)
	}
	if err := checkCreate(req); err != nil {
		return nil, nil, err
	}
	switch req.Name {
	case Bridge, Host, None:
		return nil, nil, engine.Errorf(engine.KindForbidden, "operation is not permitted on predefined %s network ", req.Name)
	}
	n := &Network{
		ID: randomID(), Namespace: ns, Name: req.Name, Driver: DriverBridge,
		Created: time.Now().UTC(), Labels: req.Labels, Attachable: req.Attachable,
	}
	var userCfg *network.IPAMConfig
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		userCfg = &req.IPAM.Config[0]
	}
	var owner *Network // the network that reserves the name
	for attempt := 0; ; attempt++ {
		nets, err := p.list(ctx, ns, true)
		if err != nil {
			return nil, nil, err
		}
		owner = nil
		for _, o := range nets {
			if o.Name != req.Name {
				continue
			}
			if !namesake {
				return nil, nil, engine.Errorf(engine.KindConflict, "network with name %s already exists", req.Name)
			}
			if !o.NameShared {
				owner = o
			}
		}
		n.NameShared = owner != nil
		if owner != nil && !owner.Namesakes {
			if _, err := p.cfg.Store.UpdateNetwork(ctx, ns, owner.ID, func(o *Network) error {
				o.Namesakes = true
				return nil
			}); err != nil && !errors.Is(err, engine.ErrNotFound) {
				return nil, nil, fmt.Errorf("create network %s: mark its namesake: %w", req.Name, err)
			}
		}
		if err := assignSubnet(n, userCfg, usedSubnets(nets)); err != nil {
			return nil, nil, err
		}
		err = p.cfg.Store.CreateNetwork(ctx, n)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, ErrSubnetTaken) && userCfg == nil && attempt < 20:
			continue // another create took it meanwhile: pick again
		case errors.Is(err, ErrSubnetTaken):
			return nil, nil, engine.Errorf(engine.KindForbidden, "Pool overlaps with other one on this address space")
		case errors.Is(err, engine.ErrConflict):
			return nil, nil, engine.Errorf(engine.KindConflict, "network with name %s already exists", req.Name)
		}
		return nil, nil, fmt.Errorf("create network %s: %w", req.Name, err)
	}
	p.changed(ns)
	p.publish(n, "create", nil)
	return n, owner, nil
}

// checkCreate refuses the create options Sockerless does not carry out.
func checkCreate(req network.CreateRequest) error {
	switch req.Driver {
	case "", DriverBridge:
	default:
		return engine.Errorf(engine.KindInvalid, "network driver %q is not supported by Sockerless: only bridge networks (containers reach each other through their agents)", req.Driver)
	}
	refuse := func(what, why string) error {
		return engine.Errorf(engine.KindInvalid, "%s is not supported by Sockerless: %s", what, why)
	}
	switch {
	case req.Scope != "" && req.Scope != "local":
		return refuse("network scope "+req.Scope, "networks are local to a namespace")
	case req.EnableIPv6 != nil && *req.EnableIPv6:
		return refuse("IPv6 (--ipv6)", "container addresses are IPv4 loopback addresses")
	case req.EnableIPv4 != nil && !*req.EnableIPv4:
		return refuse("a network without IPv4", "container addresses are IPv4 loopback addresses")
	case req.Internal:
		return refuse("an internal network (--internal)", "a function instance always has egress, which Sockerless cannot take away")
	case req.Ingress:
		return refuse("an ingress network", "there is no swarm")
	case req.ConfigOnly || req.ConfigFrom != nil && req.ConfigFrom.Network != "":
		return refuse("config-only networks (--config-only, --config-from)", "there is no swarm")
	}
	for k := range req.Options {
		return refuse(fmt.Sprintf("network option %q (--opt)", k), "networks have no driver options here")
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return refuse(fmt.Sprintf("IPAM driver %q", req.IPAM.Driver), "only the default address management")
		}
		for k := range req.IPAM.Options {
			return refuse(fmt.Sprintf("IPAM option %q (--ipam-opt)", k), "only the default address management")
		}
		if len(req.IPAM.Config) > 1 {
			return refuse("more than one subnet", "a network has one IPv4 subnet")
		}
		for _, c := range req.IPAM.Config {
			if !c.Subnet.IsValid() && (c.Gateway.IsValid() || c.IPRange.IsValid() || len(c.AuxAddress) > 0) {
				return engine.Errorf(engine.KindInvalid, "invalid pool request: Pool request needs a subnet")
			}
		}
	}
	return nil
}

// assignSubnet gives n its subnet: the user's (checked) or the first free
// one of the automatic pool.
func assignSubnet(n *Network, c *network.IPAMConfig, used []netip.Prefix) error {
	if c == nil || !c.Subnet.IsValid() {
		s, err := pickSubnet(used)
		if err != nil {
			return err
		}
		n.Subnet, n.Gateway, n.IPRange, n.UserSubnet = s.String(), firstHost(s).String(), "", false
		return nil
	}
	if err := checkUserSubnet(c.Subnet, used); err != nil {
		return err
	}
	n.Subnet, n.UserSubnet = c.Subnet.String(), true
	gw := firstHost(c.Subnet)
	if c.Gateway.IsValid() {
		if !c.Subnet.Contains(c.Gateway) {
			return engine.Errorf(engine.KindInvalid, "Invalid Address %s: It does not belong to any of this network's subnets", c.Gateway)
		}
		gw, n.UserGateway = c.Gateway, true
	}
	n.Gateway = gw.String()
	if c.IPRange.IsValid() {
		if !c.Subnet.Contains(c.IPRange.Addr()) || c.IPRange.Bits() < c.Subnet.Bits() {
			return engine.Errorf(engine.KindInvalid, "Invalid range %s: It does not belong to the subnet %s", c.IPRange, c.Subnet)
		}
		n.IPRange = c.IPRange.Masked().String()
	}
	// Auxiliary addresses are reserved: no container gets them.
	for name, a := range c.AuxAddress {
		if !c.Subnet.Contains(a) {
			return engine.Errorf(engine.KindInvalid, "invalid auxiliary address %s=%s: it does not belong to the subnet %s", name, a, c.Subnet)
		}
		if n.AuxAddresses == nil {
			n.AuxAddresses = map[string]string{}
		}
		n.AuxAddresses[name] = a.String()
	}
	return nil
}

func usedSubnets(nets []*Network) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range nets {
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Remove deletes a user network that has no running member (docker
// network rm).
func (p *Plane) Remove(ctx context.Context, ns, ref string) error {
	n, err := p.Network(ctx, ns, ref)
	if err != nil {
		return err
	}
	if n.Predefined() {
		return engine.Errorf(engine.KindForbidden, "%s is a pre-defined network and cannot be removed", n.Name)
	}
	if len(n.Endpoints) > 0 {
		return engine.Errorf(engine.KindForbidden, "error while removing network: network %s id %s has active endpoints", n.Name, n.ID)
	}
	// Deleted only if still without members: a start may have joined.
	_, err = p.cfg.Store.UpdateNetwork(ctx, ns, n.ID, func(cur *Network) error {
		if len(cur.Endpoints) > 0 {
			return engine.Errorf(engine.KindForbidden, "error while removing network: network %s id %s has active endpoints", n.Name, n.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.cfg.Store.DeleteNetwork(ctx, ns, n.ID); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	p.changed(ns)
	p.publish(n, "destroy", nil)
	return nil
}

// listKeys are the filters of GET /networks; pruneKeys those of prune.
var (
	listKeys  = map[string]bool{"name": true, "id": true, "label": true, "driver": true, "type": true, "dangling": true, "scope": true}
	pruneKeys = map[string]bool{"label": true, "label!": true, "until": true}
)

// List returns the namespace's networks that match f (docker network ls),
// sorted by name.
func (p *Plane) List(ctx context.Context, ns string, f engine.Filters) ([]*Network, error) {
	for k := range f {
		if !listKeys[k] {
			return nil, engine.Errorf(engine.KindInvalid, "Invalid filter '%s'", k)
		}
	}
	for _, t := range f["type"] {
		if t != "custom" && t != "builtin" {
			return nil, engine.Errorf(engine.KindInvalid, "invalid filter: 'type'='%s'", t)
		}
	}
	for _, d := range f["dangling"] {
		if _, err := strconv.ParseBool(d); err != nil {
			return nil, engine.Errorf(engine.KindInvalid, "invalid filter 'dangling=%s'", d)
		}
	}
	nets, err := p.list(ctx, ns, true)
	if err != nil {
		return nil, err
	}
	var out []*Network
	for _, n := range nets {
		if matchList(n, f) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func matchList(n *Network, f engine.Filters) bool {
	re := func(v, s string) bool {
		r, err := regexp.Compile(v)
		return err == nil && r.MatchString(s)
	}
	if !engine.AnyOf(f["name"], func(v string) bool { return re(v, n.Name) }) ||
		!engine.AnyOf(f["id"], func(v string) bool { return re(v, n.ID) }) ||
		!engine.AnyOf(f["driver"], func(v string) bool { return v == n.Driver }) ||
		!engine.AnyOf(f["scope"], func(v string) bool { return v == "local" }) ||
		!engine.AnyOf(f["type"], func(v string) bool { return (v == "builtin") == n.Predefined() }) {
		return false
	}
	if !engine.AnyOf(f["dangling"], func(v string) bool {
		d, _ := strconv.ParseBool(v)
		return d == (!n.Predefined() && len(n.Endpoints) == 0)
	}) {
		return false
	}
	return engine.MatchLabels(f["label"], n.Labels, true)
}

// Prune removes the user networks without running members that match f
// (docker network prune) and returns their names.
func (p *Plane) Prune(ctx context.Context, ns string, f engine.Filters) ([]string, error) {
	for k := range f {
		if !pruneKeys[k] {
			return nil, engine.Errorf(engine.KindInvalid, "invalid filter '%s'", k)
		}
	}
	var until time.Time
	for _, u := range f["until"] {
		t, err := engine.ParseTime(u)
		if err != nil {
			return nil, engine.Errorf(engine.KindInvalid, "invalid filter 'until=%s'", u)
		}
		until = t
	}
	nets, err := p.list(ctx, ns, true)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nets {
		if n.Predefined() || len(n.Endpoints) > 0 || !until.IsZero() && !n.Created.Before(until) {
			continue
		}
		if !engine.MatchLabels(f["label"], n.Labels, true) || !engine.MatchLabels(f["label!"], n.Labels, false) {
			continue
		}
		if err := p.Remove(ctx, ns, n.ID); err != nil {
			if engine.KindOf(err) == engine.KindForbidden || engine.KindOf(err) == engine.KindNotFound {
				continue // joined or removed meanwhile
			}
			return out, err
		}
		out = append(out, n.Name)
	}
	return out, nil
}
