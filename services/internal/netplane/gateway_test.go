package netplane_test

import (
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

// TestSiblingsPublishedPortsListenAtTheGateway: a container's view has a
// discovered gateway listener for each host port its client's siblings
// publish, but none for a port it declares itself.
func TestSiblingsPublishedPortsListenAtTheGateway(t *testing.T) {
	f := newFixture(t)
	f.plane.SetPublished(func(ns, client string) []int {
		if ns == engine.DefaultNamespace && client == "fwd-1" {
			return []int{8080, 9000}
		}
		return nil
	})
	c := storetest.NewContainer(engine.DefaultNamespace, "c000000000000000000000000000000000000000000000000000000000000001", "gw")
	c.Client = "fwd-1"
	c.Config = &container.Config{Hostname: "gw", ExposedPorts: exposed("9000/tcp")}
	c.HostConfig = &container.HostConfig{}
	if err := f.plane.Prepare(t.Context(), c, nil); err != nil {
		t.Fatal(err)
	}
	c.State.Status = engine.StatusRunning
	if err := f.store.CreateContainer(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	v, err := f.plane.Up(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	var got []proto.ListenAddr
	for _, la := range v.Listen {
		if la.Host {
			got = append(got, la)
		}
	}
	if len(got) != 1 || got[0].Addr != "127.17.0.1:8080" || got[0].Port != 8080 || !got[0].Discovered {
		t.Fatalf("gateway listeners %+v", got)
	}
}
