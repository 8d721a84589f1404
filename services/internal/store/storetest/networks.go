package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
)

// networkCases check the network plane's slice of the store
// (netplane.Store), which every engine.Store implementation also has.
func networkCases() []testCase {
	return []testCase{
		{"networks are found by id, name and unique id prefix, per namespace", testNetworkLookup},
		{"a network name is unique per namespace", testNetworkNameUnique},
		{"a namesake network reserves no name and frees none", testNetworkNamesake},
		{"a subnet is reserved per namespace and freed on delete", testNetworkSubnet},
		{"network updates are read-modify-write; name and subnet stay", testNetworkUpdate},
		{"racing address allocations on one network all get distinct addresses", testNetworkRaceAllocate},
		{"racing creates of one subnet: one winner", testNetworkRaceSubnet},
	}
}

func netStore(t *testing.T, s engine.Store) netplane.Store {
	t.Helper()
	ns, ok := s.(netplane.Store)
	if !ok {
		t.Fatalf("%T has no network store (netplane.Store)", s)
	}
	return ns
}

// NewNetwork returns a network record for tests of stores.
func NewNetwork(ns, id, name, subnet string) *netplane.Network {
	return &netplane.Network{ID: id, Namespace: ns, Name: name, Driver: netplane.DriverBridge, Created: time.Now().UTC(), Subnet: subnet, Labels: map[string]string{"k": "v"}}
}

func testNetworkLookup(t *testing.T, s engine.Store) {
	st, ctx := netStore(t, s), t.Context()
	for _, n := range []*netplane.Network{
		NewNetwork("a", "abc111", "front", "127.18.0.0/16"),
		NewNetwork("a", "abc222", "back", "127.19.0.0/16"),
		NewNetwork("a", "def333", "abc111x", "127.20.0.0/16"),
		NewNetwork("b", "abc999", "front", "127.18.0.0/16"),
	} {
		if err := st.CreateNetwork(ctx, n); err != nil {
			t.Fatalf("create %s: %v", n.Name, err)
		}
	}
	tests := []struct {
		ns, ref, want string
		err           *engine.Error
	}{
		{"a", "abc111", "abc111", nil},
		{"a", "front", "abc111", nil},
		{"a", "abc2", "abc222", nil},
		{"a", "d", "def333", nil},
		{"a", "abc111x", "def333", nil}, // a name before an ID prefix
		{"a", "abc", "", engine.ErrAmbiguous},
		{"a", "abc999", "", engine.ErrNotFound}, // another namespace's
		{"b", "front", "abc999", nil},
		{"a", "nope", "", engine.ErrNotFound},
		{"a", "", "", engine.ErrNotFound},
	}
	for _, tt := range tests {
		n, err := st.GetNetwork(ctx, tt.ns, tt.ref)
		wantErr(t, err, tt.err)
		if tt.err == nil && n.ID != tt.want {
			t.Errorf("GetNetwork(%s, %q) = %s, want %s", tt.ns, tt.ref, n.ID, tt.want)
		}
		if tt.err == nil && n.Labels["k"] != "v" {
			t.Errorf("GetNetwork(%s, %q) lost the labels: %+v", tt.ns, tt.ref, n)
		}
	}
	list, err := st.ListNetworks(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range list {
		ids = append(ids, n.ID)
	}
	sort.Strings(ids)
	if !slices.Equal(ids, []string{"abc111", "abc222", "def333"}) {
		t.Errorf("ListNetworks(a) = %v", ids)
	}
	if list, _ := st.ListNetworks(ctx, "c"); len(list) != 0 {
		t.Errorf("ListNetworks(c) = %v, want none", list)
	}
}

func testNetworkNameUnique(t *testing.T, s engine.Store) {
	st, ctx := netStore(t, s), t.Context()
	if err := st.CreateNetwork(ctx, NewNetwork("a", "n1", "dup", "127.18.0.0/16")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, st.CreateNetwork(ctx, NewNetwork("a", "n2", "dup", "127.19.0.0/16")), engine.ErrConflict)
	wantErr(t, st.CreateNetwork(ctx, NewNetwork("a", "n1", "other", "127.20.0.0/16")), engine.ErrConflict)
	// The losers reserved nothing: their subnets are free.
	wantErr(t, st.CreateNetwork(ctx, NewNetwork("a", "n3", "third", "127.19.0.0/16")), nil)
	wantErr(t, st.CreateNetwork(ctx, NewNetwork("b", "n4", "dup", "127.18.0.0/16")), nil)
	if err := st.DeleteNetwork(ctx, "a", "n1"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, st.CreateNetwork(ctx, NewNetwork("a", "n5", "dup", "")), nil)
	wantErr(t, st.DeleteNetwork(ctx, "a", "n1"), engine.ErrNotFound)
	wantErr(t, st.DeleteNetwork(ctx, "b", "n5"), engine.ErrNotFound)
	if _, err := st.GetNetwork(ctx, "a", "dup"); err != nil {
		t.Fatalf("the name of a deleted network was not freed: %v", err)
	}
}

func testNetworkNamesake(t *testing.T, s engine.Store) {
	st, ctx := netStore(t, s), t.Context()
	owner := NewNetwork("a", "n1", "same", "127.18.0.0/16")
	if err := st.CreateNetwork(ctx, owner); err != nil {
		t.Fatal(err)
	}
	twin := NewNetwork("a", "n2", "same", "127.19.0.0/16")
	twin.NameShared = true
	wantErr(t, st.CreateNetwork(ctx, twin), nil)
	if n, err := st.GetNetwork(ctx, "a", "same"); err != nil || n.ID != "n1" {
		t.Fatalf("the name finds %v, %v; want the network that reserved it (n1)", n, err)
	}
	if n, err := st.GetNetwork(ctx, "a", "n2"); err != nil || !n.NameShared {
		t.Fatalf("the namesake by id: %+v, %v", n, err)
	}
	// Removing the namesake leaves the owner's reservation.
	wantErr(t, st.DeleteNetwork(ctx, "a", "n2"), nil)
	wantErr(t, st.CreateNetwork(ctx, NewNetwork("a", "n3", "same", "")), engine.ErrConflict)
	if n, err := st.GetNetwork(ctx, "a", "same"); err != nil || n.ID != "n1" {
		t.Fatalf("after the namesake went, the name finds %v, %v; want n1", n, err)
	}
}

func testNetworkSubnet(t *testing.T, s engine.Store) {
	st, ctx := netStore(t, s), t.Context()
	if err := st.CreateNetwork(ctx, NewNetwork("a", "n1", "one", "127.18.0.0/16")); err != nil {
		t.Fatal(err)
	}
	err := st.CreateNetwork(ctx, NewNetwork("a", "n2", "two", "127.18.0.0/16"))
	if !errors.Is(err, netplane.ErrSubnetTaken) {
		t.Fatalf("second create of a subnet: %v, want ErrSubnetTaken", err)
	}
	if _, err := st.GetNetwork(ctx, "a", "two"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a refused create reserved its name: %v", err)
	}
	if err := st.DeleteNetwork(ctx, "a", "n1"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, st.CreateNetwork(ctx, NewNetwork("a", "n2", "two", "127.18.0.0/16")), nil)
}

func testNetworkUpdate(t *testing.T, s engine.Store) {
	st, ctx := netStore(t, s), t.Context()
	if err := st.CreateNetwork(ctx, NewNetwork("a", "n1", "one", "127.18.0.0/16")); err != nil {
		t.Fatal(err)
	}
	out, err := st.UpdateNetwork(ctx, "a", "n1", func(n *netplane.Network) error {
		n.Endpoints = map[string]*netplane.Endpoint{"c1": {ID: "e1", Container: "c1", Name: "web", IP: "127.18.0.2", Ports: []int{80}}}
		n.Name, n.Subnet = "renamed", "127.99.0.0/16" // ignored: reserved keys
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != "one" || out.Subnet != "127.18.0.0/16" || out.Endpoints["c1"].IP != "127.18.0.2" {
		t.Fatalf("update returned %+v", out)
	}
	got, err := st.GetNetwork(ctx, "a", "one")
	if err != nil || got.Endpoints["c1"] == nil || !slices.Equal(got.Endpoints["c1"].Ports, []int{80}) {
		t.Fatalf("after update: %+v, %v", got, err)
	}
	boom := errors.New("boom")
	if _, err := st.UpdateNetwork(ctx, "a", "n1", func(n *netplane.Network) error { n.Endpoints = nil; return boom }); err != boom {
		t.Fatalf("fn's error = %v, want it as is", err)
	}
	if got, _ := st.GetNetwork(ctx, "a", "n1"); got.Endpoints["c1"] == nil {
		t.Fatal("an aborted update was written")
	}
	_, err = st.UpdateNetwork(ctx, "b", "n1", func(*netplane.Network) error { return nil })
	wantErr(t, err, engine.ErrNotFound)
}

func testNetworkRaceAllocate(t *testing.T, s engine.Store) {
	st, ctx := netStore(t, s), t.Context()
	if err := st.CreateNetwork(ctx, NewNetwork("a", "n1", "one", "127.18.0.0/16")); err != nil {
		t.Fatal(err)
	}
	const n = 12
	errs := race(n, func(i int) error {
		_, err := st.UpdateNetwork(ctx, "a", "n1", func(nw *netplane.Network) error {
			if nw.Endpoints == nil {
				nw.Endpoints = map[string]*netplane.Endpoint{}
			}
			ip := fmt.Sprintf("127.18.0.%d", len(nw.Endpoints)+2) // the next free one
			nw.Endpoints[fmt.Sprintf("c%02d", i)] = &netplane.Endpoint{Container: fmt.Sprintf("c%02d", i), IP: ip}
			return nil
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	got, err := st.GetNetwork(ctx, "a", "n1")
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]bool{}
	for _, ep := range got.Endpoints {
		ips[ep.IP] = true
	}
	if len(got.Endpoints) != n || len(ips) != n {
		t.Fatalf("%d endpoints with %d distinct addresses, want %d each", len(got.Endpoints), len(ips), n)
	}
}

func testNetworkRaceSubnet(t *testing.T, s engine.Store) {
	st, ctx := netStore(t, s), t.Context()
	const n = 8
	errs := race(n, func(i int) error {
		return st.CreateNetwork(ctx, NewNetwork("a", fmt.Sprintf("n%d", i), fmt.Sprintf("net%d", i), "127.30.0.0/16"))
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, netplane.ErrSubnetTaken):
			t.Fatalf("racer %d: %v, want ErrSubnetTaken", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d winners, want 1", winners)
	}
	if list, _ := st.ListNetworks(ctx, "a"); len(list) != 1 {
		t.Fatalf("%d networks stored, want 1", len(list))
	}
}
