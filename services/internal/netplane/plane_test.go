package netplane_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// agents records the views sent, by container ID; the agents of the
// containers in away are not connected.
type agents struct {
	mu    sync.Mutex
	views map[string][]proto.NetworkView
	away  map[string]bool
	lost  map[string]int // views not sent, by container ID
}

func (a *agents) SendView(_ context.Context, _, id string, v proto.NetworkView) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.away[id] {
		a.lost[id]++
		return errors.New("agent not connected")
	}
	a.views[id] = append(a.views[id], v)
	return nil
}

func (a *agents) setAway(id string, away bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.away[id] = away
}

func (a *agents) last(id string) (proto.NetworkView, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	vs := a.views[id]
	if len(vs) == 0 {
		return proto.NetworkView{}, 0
	}
	return vs[len(vs)-1], len(vs)
}

type fixture struct {
	t      *testing.T
	store  *bolt.Store
	plane  *netplane.Plane
	agents *agents
}

func newFixture(t *testing.T, opts ...func(*netplane.Config)) *fixture {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &agents{views: map[string][]proto.NetworkView{}, away: map[string]bool{}, lost: map[string]int{}}
	cfg := netplane.Config{Store: st, Containers: st, Agents: a, Debounce: time.Millisecond,
		HostPorts: func(string, string) []int { return []int{5000} }}
	for _, o := range opts {
		o(&cfg)
	}
	p := netplane.New(cfg)
	t.Cleanup(func() { p.Close(); st.Close() })
	return &fixture{t: t, store: st, plane: p, agents: a}
}

// run creates container name (id made of name) with the settings given
// and starts it on its networks; it returns the container and its view.
func (f *fixture) run(name string, hc container.HostConfig, cfg container.Config, eps map[string]*network.EndpointSettings) (*engine.Container, proto.NetworkView) {
	f.t.Helper()
	return f.up(name, engine.StatusRunning, hc, cfg, eps)
}

// up is run with the container in state status when it comes up
// (created: it is starting).
func (f *fixture) up(name string, status string, hc container.HostConfig, cfg container.Config, eps map[string]*network.EndpointSettings) (*engine.Container, proto.NetworkView) {
	f.t.Helper()
	id := fmt.Sprintf("%-64s", name)
	id = strings.ReplaceAll(id, " ", "0")
	c := storetest.NewContainer(engine.DefaultNamespace, id, name)
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
	}
	c.Config, c.HostConfig = &cfg, &hc
	if err := f.plane.Prepare(f.t.Context(), c, eps); err != nil {
		f.t.Fatalf("prepare %s: %v", name, err)
	}
	c.State.Status = status
	if err := f.store.CreateContainer(f.t.Context(), c); err != nil {
		f.t.Fatal(err)
	}
	v, err := f.plane.Up(f.t.Context(), c)
	if err != nil {
		f.t.Fatalf("up %s: %v", name, err)
	}
	return c, *v
}

func (f *fixture) network(name string) *netplane.Network {
	f.t.Helper()
	n, err := f.plane.Create(f.t.Context(), engine.DefaultNamespace, network.CreateRequest{Name: name})
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) ip(c *engine.Container, net string) string {
	f.t.Helper()
	eps, err := f.plane.EndpointSettings(f.t.Context(), c, false)
	if err != nil || eps[net] == nil || !eps[net].IPAddress.IsValid() {
		f.t.Fatalf("%s has no address on %s: %v %v", c.Name, net, eps, err)
	}
	return eps[net].IPAddress.String()
}

// waitView waits until the last view sent to c satisfies ok.
func (f *fixture) waitView(c *engine.Container, what string, ok func(proto.NetworkView) bool) proto.NetworkView {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, n := f.agents.last(c.ID)
		if n > 0 && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s never got a view where %s; last %+v", c.Name, what, v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func exposed(ports ...string) network.PortSet {
	s := network.PortSet{}
	for _, p := range ports {
		s[network.MustParsePort(p)] = struct{}{}
	}
	return s
}

func listens(v proto.NetworkView, addr string) bool {
	return slices.ContainsFunc(v.Listen, func(l proto.ListenAddr) bool { return l.Addr == addr })
}

func TestViewsOfAUserNetwork(t *testing.T) {
	f := newFixture(t)
	f.network("app")
	f.network("other")
	db, _ := f.run("db", container.HostConfig{NetworkMode: "app"}, container.Config{Hostname: "dbhost", ExposedPorts: exposed("5432/tcp")},
		map[string]*network.EndpointSettings{"app": {Aliases: []string{"database"}}})
	web, webView := f.run("web", container.HostConfig{NetworkMode: "app", ExtraHosts: []string{"foo:1.2.3.4", "host.docker.internal:host-gateway"}, DNSSearch: []string{"a.b"}},
		container.Config{ExposedPorts: exposed("80/tcp")}, nil)
	lone, loneView := f.run("lone", container.HostConfig{NetworkMode: "other"}, container.Config{}, nil)
	dbIP, webIP := f.ip(db, "app"), f.ip(web, "app")

	if !webView.DNS || !slices.Equal(webView.DNSSearch, []string{"a.b"}) {
		t.Fatalf("web's view: DNS %v search %v", webView.DNS, webView.DNSSearch)
	}
	for _, name := range []string{"db", "database", "dbhost", db.ID[:12], "db.app", "web", web.ID[:12]} {
		want := dbIP
		if strings.HasPrefix(name, "web") || name == web.ID[:12] {
			want = webIP
		}
		if got := webView.Names[name]; !slices.Equal(got, []string{want}) {
			t.Errorf("web resolves %s to %v, want [%s]", name, got, want)
		}
	}
	if !listens(webView, dbIP+":5432") || listens(webView, webIP+":80") {
		t.Errorf("web listens on %+v, want db's 5432 and not its own address", webView.Listen)
	}
	if !listens(webView, "127.17.0.1:5000") {
		t.Errorf("web (host-gateway) does not listen for the client's allowed port: %+v", webView.Listen)
	}
	wantHosts := []proto.HostEntry{{IP: "1.2.3.4", Names: []string{"foo"}}, {IP: "127.17.0.1", Names: []string{"host.docker.internal"}}, {IP: webIP, Names: []string{web.ID[:12]}}}
	if fmt.Sprint(webView.Hosts) != fmt.Sprint(wantHosts) {
		t.Errorf("web's hosts %v, want %v", webView.Hosts, wantHosts)
	}
	// Isolation: another network's container neither resolves nor reaches them.
	if _, ok := loneView.Names["db"]; ok || len(loneView.Listen) != 0 {
		t.Errorf("lone sees db: names %v listen %v", loneView.Names, loneView.Listen)
	}
	// db learns of web once it starts.
	f.waitView(db, "web resolves and its port is listened for", func(v proto.NetworkView) bool {
		return slices.Equal(v.Names["web"], []string{webIP}) && listens(v, webIP+":80")
	})

	// Peer streams: allowed between members, on the peer's address only.
	ctx := t.Context()
	target, dial, err := f.plane.RoutePeer(ctx, engine.DefaultNamespace, web.ID, proto.MeshOpen{Kind: proto.MeshPeer, Container: db.ID, Addr: dbIP + ":5432"})
	if want := (proto.MeshOpen{Kind: proto.MeshDial, Addr: dbIP + ":5432", From: webIP}); err != nil || target != engine.DefaultNamespace+"/"+db.ID || dial != want {
		t.Fatalf("web → db: %q %+v, %v; want %+v", target, dial, err, want)
	}
	for _, bad := range []struct {
		from string
		open proto.MeshOpen
	}{
		{lone.ID, proto.MeshOpen{Kind: proto.MeshPeer, Container: db.ID, Addr: dbIP + ":5432"}},  // no shared network
		{web.ID, proto.MeshOpen{Kind: proto.MeshPeer, Container: db.ID, Addr: "127.0.0.1:5432"}}, // not db's address
		{web.ID, proto.MeshOpen{Kind: proto.MeshPeer, Container: lone.ID, Addr: dbIP + ":5432"}}, // db's address, claimed for lone
		{web.ID, proto.MeshOpen{Kind: proto.MeshPeer, Container: web.ID, Addr: webIP + ":80"}},   // itself
		{"nobody", proto.MeshOpen{Kind: proto.MeshPeer, Container: db.ID, Addr: dbIP + ":5432"}}, // no such container
	} {
		if _, _, err := f.plane.RoutePeer(ctx, engine.DefaultNamespace, bad.from, bad.open); !errors.Is(err, proto.ErrRefused) {
			t.Errorf("%s → %+v: %v, want refused", bad.from, bad.open, err)
		}
	}

	// Connect lone to app: it resolves db at once, and db resolves it.
	if err := f.plane.Connect(ctx, engine.DefaultNamespace, "app", "lone", nil); err != nil {
		t.Fatal(err)
	}
	loneIP := f.ip(mustGet(t, f.store, "lone"), "app")

	f.waitView(lone, "db resolves", func(v proto.NetworkView) bool { return slices.Equal(v.Names["db"], []string{dbIP}) })
	f.waitView(db, "lone resolves", func(v proto.NetworkView) bool { return slices.Contains(v.Names["lone"], loneIP) })
	// Disconnect: gone both ways, and its streams are refused.
	if err := f.plane.Disconnect(ctx, engine.DefaultNamespace, "app", "lone", false); err != nil {
		t.Fatal(err)
	}
	f.waitView(lone, "db is gone", func(v proto.NetworkView) bool { _, ok := v.Names["db"]; return !ok })
	f.waitView(db, "lone is gone", func(v proto.NetworkView) bool { _, ok := v.Names["lone"]; return !ok })
	if _, _, err := f.plane.RoutePeer(ctx, engine.DefaultNamespace, lone.ID, proto.MeshOpen{Kind: proto.MeshPeer, Container: db.ID, Addr: dbIP + ":5432"}); err == nil {
		t.Error("lone still reaches db after its disconnect")
	}
	// Ports the peer's processes listen on are reached too.
	f.plane.Listening(ctx, engine.DefaultNamespace, db.ID, []int{8080, 5432})
	f.waitView(web, "db's 8080 is listened for", func(v proto.NetworkView) bool { return listens(v, dbIP+":8080") })
	// A member that stops leaves its peers' views.
	if err := f.plane.Down(ctx, db); err != nil {
		t.Fatal(err)
	}
	f.waitView(web, "db is gone", func(v proto.NetworkView) bool { _, ok := v.Names["db"]; return !ok && !listens(v, dbIP+":5432") })
}

func mustGet(t *testing.T, st *bolt.Store, ref string) *engine.Container {
	t.Helper()
	c, err := st.GetContainer(t.Context(), engine.DefaultNamespace, ref)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestViewsOfTheDefaultBridge(t *testing.T) {
	f := newFixture(t)
	db, _ := f.run("db", container.HostConfig{}, container.Config{ExposedPorts: exposed("5432/tcp")}, nil)
	app, v := f.run("app", container.HostConfig{Links: []string{"db:dbal"}}, container.Config{ExposedPorts: exposed("5432/tcp", "80/tcp")}, nil)
	dbIP, appIP := f.ip(db, "bridge"), f.ip(app, "bridge")
	if !strings.HasPrefix(dbIP, "127.17.0.") || v.DNS || len(v.Names) != 0 {
		t.Fatalf("bridge: address %s, DNS %v, names %v (docker's bridge resolves no names)", dbIP, v.DNS, v.Names)
	}
	wantHosts := []proto.HostEntry{{IP: dbIP, Names: []string{"dbal", db.ID[:12], "db"}}, {IP: appIP, Names: []string{app.ID[:12]}}}
	if fmt.Sprint(v.Hosts) != fmt.Sprint(wantHosts) {
		t.Fatalf("hosts with a link: %v, want %v", v.Hosts, wantHosts)
	}
	// app declares 5432 itself: its agent must not bind it (its own server
	// would fail), so db's 5432 is not listened for.
	if listens(v, dbIP+":5432") {
		t.Fatalf("app listens on db's 5432, a port it declares itself: %+v", v.Listen)
	}
	f.waitView(db, "app's 80 is listened for by IP", func(v proto.NetworkView) bool { return listens(v, appIP+":80") })
}

func TestRefusedModes(t *testing.T) {
	f := newFixture(t)
	f.network("app")
	for _, tt := range []struct {
		name string
		hc   container.HostConfig
		eps  map[string]*network.EndpointSettings
		want string
	}{
		{"host", container.HostConfig{NetworkMode: "host"}, nil, `network mode "host" is not supported`},
		{"container", container.HostConfig{NetworkMode: "container:x"}, nil, `"container:x" is not supported`},
		{"missing network", container.HostConfig{NetworkMode: "nope"}, nil, "network nope not found"},
		{"alias on the bridge", container.HostConfig{}, map[string]*network.EndpointSettings{"bridge": {Aliases: []string{"x"}}}, "network-scoped alias"},
		{"static address without a user subnet", container.HostConfig{NetworkMode: "app"}, map[string]*network.EndpointSettings{"app": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: mustAddr("127.18.0.9")}}}, "user specified IP address is supported only"},
		{"bad extra host", container.HostConfig{ExtraHosts: []string{"x:notanip"}}, nil, "invalid IP address in add-host"},
		{"missing link", container.HostConfig{Links: []string{"ghost:g"}}, nil, "could not get container for ghost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := storetest.NewContainer(engine.DefaultNamespace, "x", "x")
			c.HostConfig = &tt.hc
			err := f.plane.Prepare(t.Context(), c, tt.eps)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Prepare: %v, want %q", err, tt.want)
			}
		})
	}
}

func mustAddr(s string) (a netipAddr) { return parseAddr(s) }

func TestStaticAddressOnAUserSubnet(t *testing.T) {
	f := newFixture(t)
	_, err := f.plane.Create(t.Context(), engine.DefaultNamespace, network.CreateRequest{Name: "fixed", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: mustPrefix("127.77.0.0/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.run("pinned", container.HostConfig{NetworkMode: "fixed"}, container.Config{}, map[string]*network.EndpointSettings{"fixed": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: mustAddr("127.77.0.42")}}})
	if got := f.ip(c, "fixed"); got != "127.77.0.42" {
		t.Fatalf("address %s, want 127.77.0.42", got)
	}
	if _, err := f.plane.Create(t.Context(), engine.DefaultNamespace, network.CreateRequest{Name: "overlap", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: mustPrefix("127.77.0.0/16")}}}}); err == nil || engine.KindOf(err) != engine.KindForbidden {
		t.Fatalf("an overlapping subnet: %v", err)
	}
}

func TestSubnetsAreDistinct(t *testing.T) {
	f := newFixture(t)
	seen := map[string]bool{"127.17.0.0/16": true}
	for i := range 40 {
		n := f.network(fmt.Sprintf("n%d", i))
		if seen[n.Subnet] || !strings.HasPrefix(n.Subnet, "127.") {
			t.Fatalf("network %d got %s", i, n.Subnet)
		}
		seen[n.Subnet] = true
	}
	if err := f.plane.Remove(t.Context(), engine.DefaultNamespace, "n3"); err != nil {
		t.Fatal(err)
	}
	if n := f.network("again"); n.Subnet != "127.21.0.0/16" {
		t.Fatalf("the freed subnet was not reused: %s", n.Subnet)
	}
	if _, err := f.plane.Create(t.Context(), engine.DefaultNamespace, network.CreateRequest{Name: "again"}); engine.KindOf(err) != engine.KindConflict {
		t.Fatalf("duplicate name: %v", err)
	}
}

// A starting container's view comes from the networks it joins; a peer
// that joins before its agent connects reaches it with the agent's first
// report, when the view sent meanwhile was lost.
func TestViewMissedBeforeTheAgentConnects(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.network("app")
	first, v := f.up("first", engine.StatusCreated, container.HostConfig{NetworkMode: "app"}, container.Config{}, nil)
	if !v.DNS || len(v.Names["first"]) != 1 {
		t.Fatalf("starting container's own view: DNS %v, names %v", v.DNS, v.Names)
	}
	f.agents.setAway(first.ID, true)
	second, _ := f.run("second", container.HostConfig{NetworkMode: "app"}, container.Config{}, nil)
	secondIP := f.ip(second, "app")
	// Lost twice: by second's start, and by the round after it.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.agents.mu.Lock()
		n := f.agents.lost[first.ID]
		f.agents.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("views lost for first: %d, want 2", n)
		}
	}
	f.agents.setAway(first.ID, false)
	f.plane.Listening(ctx, engine.DefaultNamespace, first.ID, nil)
	f.waitView(first, "second resolves", func(v proto.NetworkView) bool { return slices.Equal(v.Names["second"], []string{secondIP}) })
}
