package publish

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/ttlcache"
)

// The gateway: under Docker a container reaches a sibling's published
// port (-p 8080:80) at the bridge's gateway address, since that is the
// host. Here the host is the client's machine, so each container's agent
// listens on the gateway address (netplane.HostGateway) for the host
// ports its siblings (same namespace, same client side) publish, and
// opens MeshHost streams for them; dialHost then connects such a stream
// straight to the owning sibling's agent rather than out to the client's
// machine and back.

// publishedTTL bounds how long a namespace's published ports, read from
// the store, serve views and routes (another control plane process may
// have changed them; this one's own changes drop the entry at once).
const publishedTTL = time.Second

type publishedPort struct {
	client    string
	container string
	hostPort  int
	port      int // the container's port
}

type publishedCache struct {
	mu   sync.Mutex
	byNS map[string]publishedEntry
	// reads are the store reads of a namespace's ports under way: a
	// caller joins one rather than listing the containers again (a
	// starting container's view asks while its network's write, which
	// began the read, is on the way).
	reads ttlcache.Reads[[]publishedPort]
}

type publishedEntry struct {
	at    time.Time
	ports []publishedPort
}

// forget drops ns's entry (a publish or unpublish here).
func (c *publishedCache) forget(ns string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byNS, ns)
	c.reads.Forget(ns) // a read begun before the change is not joined after
}

// published lists the host ports bound for ns's running containers.
func (p *Plane) published(ctx context.Context, ns string) ([]publishedPort, error) {
	c := &p.pub
	c.mu.Lock()
	e, ok := c.byNS[ns]
	c.mu.Unlock()
	if ok && time.Since(e.at) < publishedTTL {
		return e.ports, nil
	}
	return c.reads.Do(ctx, ns, func() ([]publishedPort, error) {
		// Not the first caller's context: another may have joined.
		rctx, cancel := context.WithTimeout(context.Background(), agentWait)
		defer cancel()
		return p.readPublished(rctx, ns)
	})
}

// publishingLister is a store that lists only the containers whose run
// binds host ports (Firestore: a query whose reads are those containers,
// not the whole namespace's, read for every start whose cache is cold).
type publishingLister interface {
	ListPublishing(ctx context.Context, ns string) ([]*engine.Container, error)
}

// readPublished reads ns's published ports from the store and keeps them.
func (p *Plane) readPublished(ctx context.Context, ns string) ([]publishedPort, error) {
	c := &p.pub
	list := p.cfg.Store.ListContainers
	if pl, ok := p.cfg.Store.(publishingLister); ok {
		list = pl.ListPublishing
	}
	cs, err := list(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []publishedPort
	for _, ctr := range cs {
		if ctr.Client == "" || len(ctr.Ports) == 0 || ctr.Run <= ctr.ExitedRun {
			continue
		}
		for port, bs := range ctr.Ports {
			for _, b := range bs {
				hp, err := strconv.Atoi(b.HostPort)
				if err != nil || hp <= 0 {
					continue
				}
				out = append(out, publishedPort{client: ctr.Client, container: ctr.ID, hostPort: hp, port: int(port.Num())})
			}
		}
	}
	c.mu.Lock()
	if c.byNS == nil {
		c.byNS = map[string]publishedEntry{}
	}
	c.byNS[ns] = publishedEntry{at: time.Now(), ports: out}
	c.mu.Unlock()
	return out, nil
}

// PublishedHostPorts lists the host ports that the running containers of
// namespace ns created through client publish: what a container of that
// client reaches at the gateway address (netplane's Config.Published).
func (p *Plane) PublishedHostPorts(ns, client string) []int {
	ctx, cancel := context.WithTimeout(context.Background(), agentWait)
	defer cancel()
	ps, err := p.published(ctx, ns)
	if err != nil {
		p.log.Warn("published ports for the gateway", "namespace", ns, "err", err)
		return nil
	}
	var out []int
	for _, pp := range ps {
		if pp.client == client && !slices.Contains(out, pp.hostPort) {
			out = append(out, pp.hostPort)
		}
	}
	slices.Sort(out)
	return out
}

// dialPublished connects a container of client to the sibling that
// publishes host port port; ok is false when none does.
func (p *Plane) dialPublished(ctx context.Context, ns, client string, port int) (net.Conn, bool, error) {
	ps, err := p.published(ctx, ns)
	if err != nil {
		return nil, false, err
	}
	for _, pp := range ps {
		if pp.client == client && pp.hostPort == port {
			c, err := p.Dial(ctx, ns, pp.container, pp.port)
			return c, true, err
		}
	}
	return nil, false, nil
}

// changed drops ns's cached published ports and tells the network plane
// (its views' gateway listeners change).
// The engine stores the new ports just after Publish returns, so the
// views are built again once more a little later.
func (p *Plane) changed(ns string) {
	tell := func() {
		p.pub.forget(ns)
		if p.cfg.OnPublished != nil {
			p.cfg.OnPublished(ns)
		}
	}
	tell()
	time.AfterFunc(publishedTTL, tell)
}
