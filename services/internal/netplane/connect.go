package netplane

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// running is true while a container's process runs (paused included):
// the time it has addresses.
func running(c *engine.Container) bool {
	return c.State.Status == engine.StatusRunning || c.State.Status == engine.StatusPaused
}

// findContainer resolves a container reference as docker does.
func (p *Plane) findContainer(ctx context.Context, ns, ref string) (*engine.Container, error) {
	c, err := p.cfg.Containers.GetContainer(ctx, ns, ref)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, engine.ErrNotFound):
		return nil, &engine.Error{Kind: engine.KindNotFound, Message: "No such container: " + ref, Err: err}
	case errors.Is(err, engine.ErrAmbiguous):
		return nil, &engine.Error{Kind: engine.KindInvalid, Message: "Multiple IDs found with provided prefix: " + ref, Err: err}
	}
	return nil, fmt.Errorf("get container %s: %w", ref, err)
}

// Connect attaches a container to a network (docker network connect); a
// running one gets its address there at once and its peers see it.
func (p *Plane) Connect(ctx context.Context, ns, netRef, ctrRef string, es *network.EndpointSettings) error {
	c, err := p.findContainer(ctx, ns, ctrRef) // the container first, as docker
	if err != nil {
		return err
	}
	n, err := p.Network(ctx, ns, netRef)
	if err != nil {
		return err
	}
	if n.Driver == DriverHost {
		return engine.Errorf(engine.KindForbidden, "container cannot be disconnected from host network or connected to host network")
	}
	if _, on := c.Networks[n.Name]; on {
		return engine.Errorf(engine.KindForbidden, "endpoint with name %s already exists in network %s", c.Name, n.Name)
	}
	_, onNone := c.Networks[None]
	if n.Driver == DriverNull && len(c.Networks) > 0 || onNone {
		return engine.Errorf(engine.KindInvalid, "container cannot be connected to multiple networks with one of the networks in private (none) mode")
	}
	probe := &engine.Container{Networks: map[string]*network.EndpointSettings{}}
	if err := p.attachSettings(probe, n, es); err != nil {
		return err
	}
	c, err = p.cfg.Containers.UpdateContainer(ctx, ns, c.ID, func(c *engine.Container) error {
		if _, on := c.Networks[n.Name]; on {
			return engine.Errorf(engine.KindForbidden, "endpoint with name %s already exists in network %s", c.Name, n.Name)
		}
		if c.Networks == nil {
			c.Networks = map[string]*network.EndpointSettings{}
		}
		c.Networks[n.Name] = probe.Networks[n.Name]
		return nil
	})
	if err != nil {
		return err
	}
	if running(c) {
		if _, err := p.Up(ctx, c); err != nil {
			// Undone, so that the container is as it was.
			_, _ = p.cfg.Containers.UpdateContainer(context.WithoutCancel(ctx), ns, c.ID, func(c *engine.Container) error {
				delete(c.Networks, n.Name)
				return nil
			})
			return err
		}
	}
	return nil
}

// Disconnect detaches a container from a network (docker network
// disconnect). With force, a container that no longer exists is dropped
// from the network's members by name or ID.
func (p *Plane) Disconnect(ctx context.Context, ns, netRef, ctrRef string, force bool) error {
	c, cerr := p.findContainer(ctx, ns, ctrRef) // the container first, as docker
	if cerr != nil && (!force || engine.KindOf(cerr) != engine.KindNotFound) {
		return cerr
	}
	n, err := p.Network(ctx, ns, netRef)
	if err != nil {
		return err
	}
	if n.Driver == DriverHost {
		return engine.Errorf(engine.KindForbidden, "container cannot be disconnected from host network or connected to host network")
	}
	if cerr != nil {
		return p.dropStale(ctx, n, ctrRef)
	}
	if _, on := c.Networks[n.Name]; !on {
		// Docker's two wordings; it answers 500, but 5xx answers here carry
		// no detail, and this is the client's mistake: 400 keeps the words.
		if running(c) {
			return engine.Errorf(engine.KindInvalid, "container %s is not connected to network %s", c.ID, n.Name)
		}
		return engine.Errorf(engine.KindInvalid, "container %s is not connected to the network %s", c.ID, n.Name)
	}
	_, err = p.cfg.Containers.UpdateContainer(ctx, ns, c.ID, func(c *engine.Container) error {
		delete(c.Networks, n.Name)
		return nil
	})
	if err != nil {
		return err
	}
	return p.leave(ctx, n, c.ID)
}

// leave drops container id from n's members and tells the rest, and the
// container itself (its view loses n's peers).
func (p *Plane) leave(ctx context.Context, n *Network, id string) error {
	had := false
	out, err := p.update(ctx, n.Namespace, n.ID, func(n *Network) error {
		_, had = n.Endpoints[id]
		delete(n.Endpoints, id)
		return nil
	})
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("leave network %s: %w", n.Name, err)
	}
	if out != nil {
		p.updated(n.Namespace, out)
	} else {
		p.changed(n.Namespace)
	}
	if had {
		p.publish(n, "disconnect", map[string]string{"container": id})
	}
	// Before docker network disconnect answers, the container and n's
	// members have views without each other.
	p.push.forget(id)
	ids := []string{n.ID}
	if nets, err := p.list(ctx, n.Namespace, false); err == nil {
		for _, o := range nets {
			if o.Endpoints[id] != nil {
				ids = append(ids, o.ID)
			}
		}
	}
	p.push.flushWith(ctx, n.Namespace, []string{id}, ids...)
	return nil
}

// dropStale removes the member of n named ref (a container gone without
// leaving, e.g. lost with a store write).
func (p *Plane) dropStale(ctx context.Context, n *Network, ref string) error {
	for id, ep := range n.Endpoints {
		if id == ref || ep.Name == ref || ShortID(id) == ref {
			return p.leave(ctx, n, id)
		}
	}
	return engine.Errorf(engine.KindNotFound, "No such container: %s", ref)
}
