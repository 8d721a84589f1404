package netplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Containers is the part of the engine's store the plane reads and
// updates containers through (engine.Store has it).
type Containers interface {
	GetContainer(ctx context.Context, ns, ref string) (*engine.Container, error)
	UpdateContainer(ctx context.Context, ns, id string, fn func(*engine.Container) error) (*engine.Container, error)
}

// Agents sends a container's view to its agent.
type Agents interface {
	// SendView sends v to the agent of container id of namespace ns. It
	// fails if the agent is not connected (it gets its view when it is).
	SendView(ctx context.Context, ns, id string, v proto.NetworkView) error
}

// Events publishes docker events of networks (engine.Engine has it).
type Events interface {
	PublishEvent(ns string, typ events.Type, action, id string, attrs map[string]string)
}

// Config wires a Plane.
type Config struct {
	Store      Store
	Containers Containers
	// Agents sends views to agents; nil sends none (a view then reaches
	// an agent only in its Start).
	Agents Agents
	// Events publishes network events; nil publishes none.
	Events Events
	// HostPorts lists the ports of the machine of client (a container's
	// engine.Container.Client) that containers of namespace ns may reach
	// at host-gateway (nil: none).
	HostPorts func(ns, client string) []int
	// Published lists the host ports that containers of namespace ns
	// created through client publish: every container of that client
	// reaches them at the gateway (HostGateway), as Docker's containers
	// reach their siblings' published ports at the bridge's gateway
	// (nil: none).
	Published func(ns, client string) []int
	// Debounce is how long the pusher waits to coalesce changes into one
	// round of views (default 20 ms).
	Debounce time.Duration
	// CacheTTL bounds how long a namespace's network list read from the
	// store serves reads (inspect, routes) when this process changed
	// nothing meanwhile: changes made by another control plane process
	// sharing the store show within it. Default 1 s.
	CacheTTL time.Duration
	Logger   *slog.Logger
}

// Plane is the network plane of a control plane process.
type Plane struct {
	cfg  Config
	log  *slog.Logger
	push *pusher

	mu      sync.Mutex
	ensured map[string]bool // namespaces whose predefined networks exist
	cache   map[string]cachedList
	// gen counts, per namespace, this process's changes of its networks:
	// a list read that a change overtook is not cached.
	gen map[string]uint64
	// listening holds, per container, the Listening report waiting to be
	// recorded (see Listening).
	listening map[string]listenReport
	// started are the ports recorded on the endpoints of the containers
	// this process started, until their first Listening report.
	started map[string][]int

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

type cachedList struct {
	nets []*Network
	at   time.Time
}

// update is Store.UpdateNetwork counting the change in Rev (a call that
// changes nothing writes nothing).
func (p *Plane) update(ctx context.Context, ns, id string, fn func(*Network) error) (*Network, error) {
	return p.cfg.Store.UpdateNetwork(ctx, ns, id, func(n *Network) error {
		before, err := json.Marshal(n)
		if err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
		if after, err := json.Marshal(n); err != nil || !bytes.Equal(before, after) {
			n.Rev++
		}
		return nil
	})
}

// New returns a Plane; Close stops its pusher.
func New(cfg Config) *Plane {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 20 * time.Millisecond
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Plane{cfg: cfg, log: cfg.Logger, ensured: map[string]bool{}, cache: map[string]cachedList{}, gen: map[string]uint64{}, listening: map[string]listenReport{}, started: map[string][]int{}, ctx: ctx, cancel: cancel}
	p.push = newPusher(p)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.push.run(ctx)
	}()
	return p
}

// Close stops the pusher.
func (p *Plane) Close() error {
	p.cancel()
	p.wg.Wait()
	return nil
}

// SetAgents connects the agent hub, which is made after the plane. Call
// before serving.
func (p *Plane) SetAgents(a Agents) { p.cfg.Agents = a }

// Touch has the views of namespace ns's containers built again and sent
// where they changed (what Config.HostPorts says changed).
func (p *Plane) Touch(ns string) {
	p.mu.Lock()
	c, ok := p.cache[ns]
	p.mu.Unlock()
	if !ok {
		return // no view of ns was built by this process yet
	}
	ids := make([]string, 0, len(c.nets))
	for _, n := range c.nets {
		ids = append(ids, n.ID)
	}
	p.push.mark(ns, ids...)
}

// SetHostPorts sets Config.HostPorts. Call before serving.
func (p *Plane) SetHostPorts(f func(ns, client string) []int) { p.cfg.HostPorts = f }

// SetPublished sets Config.Published. Call before serving.
func (p *Plane) SetPublished(f func(ns, client string) []int) { p.cfg.Published = f }

// SetEvents connects the event publisher. Call before serving.
func (p *Plane) SetEvents(e Events) { p.cfg.Events = e }

func (p *Plane) publish(n *Network, action string, extra map[string]string) {
	if p.cfg.Events == nil {
		return
	}
	attrs := map[string]string{"name": n.Name, "type": n.Driver}
	for k, v := range extra {
		attrs[k] = v
	}
	p.cfg.Events.PublishEvent(n.Namespace, events.NetworkEventType, action, n.ID, attrs)
}

// ensurePredefined creates bridge, host and none in ns if they are not
// there yet (once per process and namespace; creating is idempotent).
func (p *Plane) ensurePredefined(ctx context.Context, ns string) error {
	p.mu.Lock()
	done := p.ensured[ns]
	p.mu.Unlock()
	if done {
		return nil
	}
	now := time.Now().UTC()
	for _, name := range []string{Bridge, Host, None} {
		n := predefinedNetwork(ns, name)
		n.Created = now
		if err := p.cfg.Store.CreateNetwork(ctx, n); err != nil && !errors.Is(err, engine.ErrConflict) && !errors.Is(err, ErrSubnetTaken) {
			return fmt.Errorf("create predefined network %s: %w", n.Name, err)
		}
	}
	p.mu.Lock()
	p.ensured[ns] = true
	p.mu.Unlock()
	return nil
}

// predefinedNetwork is predefined network name (bridge, host or none) of
// namespace ns as created, without endpoints.
func predefinedNetwork(ns, name string) *Network {
	n := &Network{Namespace: ns, ID: predefinedID(ns, name), Name: name}
	switch name {
	case Bridge:
		n.Driver, n.Subnet, n.Gateway = DriverBridge, bridgeSubnet.String(), firstHost(bridgeSubnet).String()
	case Host:
		n.Driver = DriverHost
	case None:
		n.Driver = DriverNull
	}
	return n
}

// settled is network ref of namespace ns for what never changes in it
// (its ID, name, driver and addressing; not its endpoints): a predefined
// network, which exists once ensured and is never removed, is known
// without a read.
func (p *Plane) settled(ctx context.Context, ns, ref string) (*Network, error) {
	switch ref {
	case Bridge, Host, None:
		if err := p.ensurePredefined(ctx, ns); err != nil {
			return nil, err
		}
		return predefinedNetwork(ns, ref), nil
	}
	return p.Network(ctx, ns, ref)
}

// list returns the namespace's networks, from the cache if it is fresh
// enough (fresh forces a store read). Callers must not modify them.
func (p *Plane) list(ctx context.Context, ns string, fresh bool) ([]*Network, error) {
	if err := p.ensurePredefined(ctx, ns); err != nil {
		return nil, err
	}
	if !fresh {
		p.mu.Lock()
		c, ok := p.cache[ns]
		p.mu.Unlock()
		if ok && time.Since(c.at) < p.cfg.CacheTTL {
			return c.nets, nil
		}
	}
	at := time.Now()
	p.mu.Lock()
	gen := p.gen[ns]
	p.mu.Unlock()
	nets, err := p.cfg.Store.ListNetworks(ctx, ns)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	p.mu.Lock()
	if c, ok := p.cache[ns]; p.gen[ns] == gen && (!ok || !c.at.After(at)) {
		p.cache[ns] = cachedList{nets: nets, at: at}
	}
	p.mu.Unlock()
	return nets, nil
}

// changed drops ns's cached list (this process created or removed a
// network of it).
func (p *Plane) changed(ns string) {
	p.mu.Lock()
	delete(p.cache, ns)
	p.gen[ns]++
	p.mu.Unlock()
}

// updated puts networks this process just wrote into ns's cached list, so
// that reads after a change see it without listing the namespace again,
// and has the pusher send new views to their members.
func (p *Plane) updated(ns string, nets ...*Network) {
	if len(nets) == 0 {
		return
	}
	p.cacheUpdated(ns, nets...)
	ids := make([]string, 0, len(nets))
	for _, n := range nets {
		ids = append(ids, n.ID)
	}
	p.push.mark(ns, ids...)
}

// cacheUpdated is updated without the new views: for changes that
// change no other container's view.
func (p *Plane) cacheUpdated(ns string, nets ...*Network) {
	if len(nets) == 0 {
		return
	}
	p.mu.Lock()
	p.gen[ns]++
	c, ok := p.cache[ns]
	if ok {
		list := slices.Clone(c.nets)
		for _, n := range nets {
			i := slices.IndexFunc(list, func(o *Network) bool { return o.ID == n.ID })
			if i < 0 {
				ok = false // not in the list: read it again
				break
			}
			if n.Rev >= list[i].Rev { // an older copy never replaces a newer
				list[i] = n
			}
		}
		if ok {
			p.cache[ns] = cachedList{nets: list, at: c.at}
		} else {
			delete(p.cache, ns)
		}
	}
	p.mu.Unlock()
}

// Network finds a network by ID, name or ID prefix: docker's 404
// "network x not found" when there is none.
func (p *Plane) Network(ctx context.Context, ns, ref string) (*Network, error) {
	if err := p.ensurePredefined(ctx, ns); err != nil {
		return nil, err
	}
	lookup := ref
	switch ref {
	case Bridge, Host, None:
		// No other network takes these names (create refuses them): the
		// predefined network's ID is known, and one read finds it
		// instead of its name's and then its own.
		lookup = predefinedID(ns, ref)
	}
	n, err := p.cfg.Store.GetNetwork(ctx, ns, lookup)
	if err == nil && n.Namesakes && n.Name == ref || errors.Is(err, engine.ErrNotFound) {
		// Networks made with a taken name (CreateNamesake) reserve none:
		// the name finds them only by counting.
		// (A miss reads the cached list: it finds such a network unless
		// another control plane made it within the cache's time.)
		if m, ok, cerr := p.byName(ctx, ns, ref, err == nil); cerr != nil || ok {
			return m, cerr
		}
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, engine.ErrNotFound):
		return nil, &engine.Error{Kind: engine.KindNotFound, Message: fmt.Sprintf("network %s not found", ref), Err: err}
	case errors.Is(err, engine.ErrAmbiguous):
		return nil, &engine.Error{Kind: engine.KindInvalid, Message: fmt.Sprintf("network %s is ambiguous (%s)", ref, "more than one match found based on ID prefix"), Err: err}
	}
	return nil, fmt.Errorf("get network %s: %w", ref, err)
}

// byName finds the one network named name by listing the namespace: ok
// false when none is, docker's "ambiguous" error when several are.
func (p *Plane) byName(ctx context.Context, ns, name string, fresh bool) (*Network, bool, error) {
	nets, err := p.list(ctx, ns, fresh)
	if err != nil {
		return nil, false, err
	}
	var found []*Network
	for _, o := range nets {
		if o.Name == name {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		return nil, false, nil
	case 1:
		return found[0], true, nil
	}
	return nil, false, &engine.Error{Kind: engine.KindInvalid, Message: fmt.Sprintf("%d matches found based on name: network %s is ambiguous", len(found), name), Err: engine.ErrAmbiguous}
}

// Networks returns the namespace's networks.
func (p *Plane) Networks(ctx context.Context, ns string) ([]*Network, error) {
	return p.list(ctx, ns, true)
}
