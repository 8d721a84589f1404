package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
)

// claimStore is the embedded store whose first container write once armed
// (the start's claim) runs before first.
type claimStore struct {
	engine.Store
	armed  atomic.Bool
	before func(ctx context.Context, ns, id string) error
}

func (s *claimStore) UpdateContainer(ctx context.Context, ns, id string, fn func(*engine.Container) error) (*engine.Container, error) {
	if s.armed.CompareAndSwap(true, false) {
		if err := s.before(ctx, ns, id); err != nil {
			return nil, err
		}
	}
	return s.Store.UpdateContainer(ctx, ns, id, fn)
}

// countingFleet counts the releases of the leases it gives; released
// closes at the first.
type countingFleet struct {
	engine.Fleet
	releases atomic.Int64
	released chan struct{}
}

func (f *countingFleet) Acquire(ctx context.Context, img *engine.Image, sh engine.Shape) (engine.Lease, error) {
	l, err := f.Fleet.Acquire(ctx, img, sh)
	if err != nil {
		return nil, err
	}
	return &countedLease{Lease: l, f: f}, nil
}

type countedLease struct {
	engine.Lease
	f *countingFleet
}

func (l *countedLease) Release() {
	if l.f.releases.Add(1) == 1 {
		close(l.f.released)
	}
	l.Lease.Release()
}

// readyAgents' sessions wait for ready, then start the process at once.
type readyAgents struct{ ready chan struct{} }

func (a readyAgents) Session(ctx context.Context, _ string) (engine.AgentSession, error) {
	select {
	case <-a.ready:
		return &exitingSession{a: &exitingAgents{}}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (readyAgents) Connected(string) bool { return false }

// upDownNetworks is a network plane that records the containers given
// addresses and those released; upped receives each Up.
type upDownNetworks struct {
	mu       sync.Mutex
	ups      int
	downs    int
	upped    chan string
	released chan struct{} // closed at the first Down
}

func (n *upDownNetworks) Listening(context.Context, string, string, []int) {}
func (n *upDownNetworks) Prepare(context.Context, *engine.Container, map[string]*network.EndpointSettings) error {
	return nil
}
func (n *upDownNetworks) Up(_ context.Context, c *engine.Container) (*proto.NetworkView, error) {
	n.mu.Lock()
	n.ups++
	n.mu.Unlock()
	select {
	case n.upped <- c.ID:
	default:
	}
	return &proto.NetworkView{}, nil
}
func (n *upDownNetworks) Down(context.Context, *engine.Container) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.downs++; n.downs == 1 {
		close(n.released)
	}
	return nil
}
func (n *upDownNetworks) Refresh(context.Context, string, string) error { return nil }

func (n *upDownNetworks) calls() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("up %d down %d", n.ups, n.downs)
}

// claimRig is an engine on a claimStore, with a container "claimed"
// created, which publishes its exposed port 80.
type claimRig struct {
	e     *engine.Engine
	st    *claimStore
	fns   *fakeFunctions
	fleet *countingFleet
	ports *fakePorts
	nets  *upDownNetworks
	c     *engine.Container
}

func newClaimRig(t *testing.T, agents engine.Agents) *claimRig {
	t.Helper()
	b := boltWithBusybox(t, "sh")
	r := &claimRig{st: &claimStore{Store: b}, fns: &fakeFunctions{}, ports: &fakePorts{},
		nets: &upDownNetworks{upped: make(chan string, 1), released: make(chan struct{})}}
	fl := fleet.New(fleet.Config{Store: r.st, Images: fakeImages{}, Functions: r.fns})
	t.Cleanup(func() { fl.Close() })
	r.fleet = &countingFleet{Fleet: fl, released: make(chan struct{})}
	r.e = engine.New(engine.Config{Store: r.st, Images: fakeImages{}, Functions: r.fns, Fleet: r.fleet, Agents: agents, Ports: r.ports, Networks: r.nets, BootTimeout: 10 * time.Second, CallbackURL: "ws://hub"})
	t.Cleanup(func() { r.e.Close() })
	c, err := r.e.Create(context.Background(), engine.CreateRequest{Namespace: "default", Name: "claimed", Client: "fwd",
		Config:     &container.Config{Image: "busybox", ExposedPorts: network.PortSet{port("80/tcp"): {}}},
		HostConfig: &container.HostConfig{PublishAllPorts: true}})
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	return r
}

// startCtx bounds a start that, without the overlap, would wait for an
// invocation that comes only after it: a failure, never a pass, when
// outlasted.
func startCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A start opens its instance's invocation, and takes the container's
// addresses, while it stores its claim, not after: the claim's round trip
// to a shared store is hidden in the boot, and so are the network plane's.
func TestStartInvokesWhileItStoresTheClaim(t *testing.T) {
	ready := make(chan struct{})
	close(ready)
	r := newClaimRig(t, readyAgents{ready: ready})
	invoked := make(chan struct{})
	var once sync.Once
	r.fns.onInvoke = func(proto.Invocation) { once.Do(func() { close(invoked) }) }
	r.st.before = func(ctx context.Context, _, _ string) error {
		select {
		case <-invoked:
		case <-ctx.Done():
			return errors.New("the claim waited for an invocation that never came while it was stored")
		}
		select {
		case <-r.nets.upped:
			return nil
		case <-ctx.Done():
			return errors.New("the claim waited for addresses never taken while it was stored")
		}
	}
	r.st.armed.Store(true)
	ctx := startCtx(t)
	if err := r.e.Start(ctx, "default", "claimed"); err != nil {
		t.Fatalf("start: %v", err)
	}
	got, err := r.e.Container(ctx, "default", "claimed")
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Status != engine.StatusRunning || got.Usage.InstanceStarted.IsZero() || got.Usage.Invocations != 1 {
		t.Fatalf("after the start: %s, usage %+v; want running on a counted instance", got.State.Status, got.Usage)
	}
}

// waitingCtx tells, once, that a wait on it began (its Done was asked
// for).
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

// An agent that calls back while its start's claim is being stored waits
// for the claim and is authorized once it is stored: not refused for a
// secret the store does not have yet.
func TestAgentCallingBackDuringTheClaimIsAuthorized(t *testing.T) {
	answered := make(chan struct{})
	r := newClaimRig(t, readyAgents{ready: answered})
	actx := &waitingCtx{Context: startCtx(t), waiting: make(chan struct{})}
	var authErr error
	r.fns.onInvoke = func(inv proto.Invocation) {
		go func() {
			authErr = r.e.AgentBackend().AuthorizeAgent(actx, inv.ContainerID, inv.Secret)
			close(answered)
		}()
	}
	// The claim is stored once the agent's dial waits, or was answered.
	r.st.before = func(ctx context.Context, _, _ string) error {
		select {
		case <-actx.waiting:
		case <-answered:
		case <-ctx.Done():
			return errors.New("the claim waited for an agent that never called back while it was stored")
		}
		return nil
	}
	r.st.armed.Store(true)
	if err := r.e.Start(startCtx(t), "default", "claimed"); err != nil {
		t.Fatalf("start: %v", err)
	}
	<-answered // Start's session waited for it
	if authErr != nil {
		t.Fatalf("the agent calling back during the claim: %v, want authorized", authErr)
	}
}

// A start whose claim loses (the container was started elsewhere meanwhile,
// is being removed, or is gone) fails as before the overlap, and the
// instance it invoked meanwhile ends: the invocation is cancelled, its
// lease released once, and its agent told the instance is ended. The
// ports it bound are released as before, but to a start that finds the
// container started (whose ports they are).
func TestLostClaimEndsItsInstance(t *testing.T) {
	tests := []struct {
		name      string
		meantime  func(ctx context.Context, st engine.Store, ns, id string) error
		wantKind  engine.Kind
		wantPorts string
		wantNets  string
	}{
		{"started meanwhile", func(ctx context.Context, st engine.Store, ns, id string) error {
			_, err := st.UpdateContainer(ctx, ns, id, func(c *engine.Container) error {
				c.Run++
				c.State.Status = engine.StatusRunning
				return nil
			})
			return err
		}, engine.KindNotModified, "published [1] released []", "up 1 down 0"},
		{"being removed", func(ctx context.Context, st engine.Store, ns, id string) error {
			_, err := st.UpdateContainer(ctx, ns, id, func(c *engine.Container) error {
				c.State.Status = engine.StatusRemoving
				return nil
			})
			return err
		}, engine.KindConflict, "published [1] released [1]", "up 1 down 1"},
		{"removed", func(ctx context.Context, st engine.Store, ns, id string) error {
			return st.DeleteContainer(ctx, ns, id)
		}, engine.KindNotFound, "published [1] released [1]", "up 1 down 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newClaimRig(t, silentAgents{})
			invoked := make(chan proto.Invocation, 1)
			r.fns.onInvoke = func(inv proto.Invocation) { invoked <- inv }
			var inv proto.Invocation
			r.st.before = func(ctx context.Context, ns, id string) error {
				select {
				case inv = <-invoked:
				case <-ctx.Done():
					return errors.New("the claim waited for an invocation that never came while it was stored")
				}
				return tt.meantime(ctx, r.st.Store, ns, id)
			}
			r.st.armed.Store(true)
			ctx := startCtx(t)
			err := r.e.Start(ctx, "default", "claimed")
			if engine.KindOf(err) != tt.wantKind {
				t.Fatalf("start: %v (%v), want %v", err, engine.KindOf(err), tt.wantKind)
			}
			if inv.Secret == "" {
				t.Fatal("no invocation was made while the claim was stored")
			}
			if err := r.e.AgentBackend().AuthorizeAgent(ctx, inv.ContainerID, inv.Secret); !errors.Is(err, engine.ErrInstanceEnded) {
				t.Fatalf("the lost claim's agent: %v, want %v", err, engine.ErrInstanceEnded)
			}
			select {
			case <-r.fleet.released: // the fake's Invoke ends only when cancelled
			case <-ctx.Done():
				t.Fatal("the lost claim's invocation was not cancelled")
			}
			r.e.Close() // its background work is over: no later release
			if n := r.fleet.releases.Load(); n != 1 {
				t.Fatalf("lease released %d times, want once", n)
			}
			if got := r.ports.calls(); got != tt.wantPorts {
				t.Fatalf("ports: %s, want %s", got, tt.wantPorts)
			}
			// The addresses it took while the claim was stored are
			// released, but to a start that finds the container started.
			if got := r.nets.calls(); got != tt.wantNets {
				t.Fatalf("network plane: %s, want %s", got, tt.wantNets)
			}
		})
	}
}
