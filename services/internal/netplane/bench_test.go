package netplane_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

// countingStore counts the network store's reads.
type countingStore struct {
	*bolt.Store
	lists, gets atomic.Int64
}

func (s *countingStore) ListNetworks(ctx context.Context, ns string) ([]*netplane.Network, error) {
	s.lists.Add(1)
	return s.Store.ListNetworks(ctx, ns)
}

func (s *countingStore) GetNetwork(ctx context.Context, ns, ref string) (*netplane.Network, error) {
	s.gets.Add(1)
	return s.Store.GetNetwork(ctx, ns, ref)
}

// countingAgents counts the views sent.
type countingAgents struct{ sent atomic.Int64 }

func (a *countingAgents) SendView(context.Context, string, string, proto.NetworkView) error {
	a.sent.Add(1)
	return nil
}

// BenchmarkViewPush200 measures one event on a network of 200 running
// containers (a member's listening ports change): the store reads it
// costs and the time until all 200 changed views are sent.
func BenchmarkViewPush200(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "store.db"), bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	ag := &countingAgents{}
	p := netplane.New(netplane.Config{Store: cs, Containers: st, Agents: ag, Debounce: time.Millisecond})
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Create(ctx, engine.DefaultNamespace, network.CreateRequest{Name: "big"}); err != nil {
		b.Fatal(err)
	}
	const members = 200
	var ids []string
	for i := range members {
		c := storetest.NewContainer(engine.DefaultNamespace, fmt.Sprintf("%064d", i), fmt.Sprintf("c%d", i))
		c.Config = &container.Config{Hostname: fmt.Sprintf("h%d", i)}
		c.HostConfig = &container.HostConfig{NetworkMode: "big"}
		if err := p.Prepare(ctx, c, nil); err != nil {
			b.Fatal(err)
		}
		c.State.Status = engine.StatusRunning
		if err := st.CreateContainer(ctx, c); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Up(ctx, c); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	waitSent := func(n int64) {
		for ag.sent.Load() < n {
			time.Sleep(100 * time.Microsecond)
		}
	}
	waitSent(members) // everyone has a view
	b.ResetTimer()
	lists0, gets0 := cs.lists.Load(), cs.gets.Load()
	for i := 0; i < b.N; i++ {
		before := ag.sent.Load()
		p.Listening(ctx, engine.DefaultNamespace, ids[0], []int{1000 + i})
		waitSent(before + members - 1) // every peer's view changed
	}
	b.StopTimer()
	b.ReportMetric(float64(cs.lists.Load()-lists0)/float64(b.N), "lists/event")
	b.ReportMetric(float64(cs.gets.Load()-gets0)/float64(b.N), "gets/event")
}

// BenchmarkNetworkList200 measures docker network ls of a namespace whose
// network has 200 running members.
func BenchmarkNetworkList200(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "store.db"), bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	p := netplane.New(netplane.Config{Store: st, Containers: st})
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Create(ctx, engine.DefaultNamespace, network.CreateRequest{Name: "big"}); err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		c := storetest.NewContainer(engine.DefaultNamespace, fmt.Sprintf("%064d", i), fmt.Sprintf("c%d", i))
		c.HostConfig = &container.HostConfig{NetworkMode: "big"}
		if err := p.Prepare(ctx, c, nil); err != nil {
			b.Fatal(err)
		}
		c.State.Status = engine.StatusRunning
		if _, err := p.Up(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.List(ctx, engine.DefaultNamespace, nil); err != nil {
			b.Fatal(err)
		}
	}
}
