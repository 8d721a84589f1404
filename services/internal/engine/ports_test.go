package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// fakePorts records Publish and Unpublish calls; failWith makes Publish fail.
type fakePorts struct {
	mu        sync.Mutex
	failWith  error
	published []uint32
	released  []uint32
}

func (f *fakePorts) Publish(_ context.Context, c *engine.Container, run uint32) (network.PortMap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return nil, f.failWith
	}
	f.published = append(f.published, run)
	out := network.PortMap{}
	for p := range engine.Published(c.Config, c.HostConfig) {
		out[p] = []network.PortBinding{{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "18080"}}
	}
	return out, nil
}

func (f *fakePorts) Unpublish(_ context.Context, _ *engine.Container, run uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, run)
	return nil
}

func (f *fakePorts) calls() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("published %v released %v", f.published, f.released)
}

func port(s string) network.Port { return network.MustParsePort(s) }

func TestPublishedFollowsDockersRule(t *testing.T) {
	bind := []network.PortBinding{{HostPort: "8080"}}
	tests := []struct {
		name string
		cfg  container.Config
		hc   container.HostConfig
		want string
	}{
		{"bound exposed port is published",
			container.Config{ExposedPorts: network.PortSet{port("80/tcp"): {}}},
			container.HostConfig{PortBindings: network.PortMap{port("80/tcp"): bind}}, "80/tcp:8080"},
		{"binding of a port not exposed is not published (as Docker)",
			container.Config{},
			container.HostConfig{PortBindings: network.PortMap{port("80/tcp"): bind}}, ""},
		{"-P publishes every exposed port on a free port",
			container.Config{ExposedPorts: network.PortSet{port("80/tcp"): {}}},
			container.HostConfig{PublishAllPorts: true}, "80/tcp:"},
		{"exposed port without -p or -P is not published",
			container.Config{ExposedPorts: network.PortSet{port("80/tcp"): {}}},
			container.HostConfig{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for p, bs := range engine.Published(&tt.cfg, &tt.hc) {
				for _, b := range bs {
					got = append(got, p.String()+":"+b.HostPort)
				}
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("published %v, want %q", got, tt.want)
			}
		})
	}
}

func TestCreateRefusesPortsItCannotPublish(t *testing.T) {
	tcp80 := network.PortSet{port("80/tcp"): {}}
	tests := []struct {
		name    string
		cfg     container.Config
		hc      container.HostConfig
		client  string
		noPorts bool
		wantErr string
	}{
		{"SCTP is refused", container.Config{ExposedPorts: network.PortSet{port("53/sctp"): {}}},
			container.HostConfig{PortBindings: network.PortMap{port("53/sctp"): {{HostPort: "53"}}}}, "fwd", false, "only TCP and UDP ports can be published"},
		{"UDP through a forwarder is accepted", container.Config{ExposedPorts: network.PortSet{port("53/udp"): {}}},
			container.HostConfig{PortBindings: network.PortMap{port("53/udp"): {{HostPort: "5353"}}}}, "fwd", false, ""},
		{"a client without a forwarder is refused", container.Config{ExposedPorts: tcp80},
			container.HostConfig{PublishAllPorts: true}, "", false, "need the Sockerless forwarder"},
		{"a bad host port is refused", container.Config{ExposedPorts: tcp80},
			container.HostConfig{PortBindings: network.PortMap{port("80/tcp"): {{HostPort: "99999"}}}}, "fwd", false, `invalid host port "99999"`},
		{"a control plane without ports refuses them", container.Config{ExposedPorts: tcp80},
			container.HostConfig{PublishAllPorts: true}, "fwd", true, "not available"},
		{"a TCP port through a forwarder is accepted", container.Config{ExposedPorts: tcp80},
			container.HostConfig{PortBindings: network.PortMap{port("80/tcp"): {{HostPort: "8000-8010"}}}}, "fwd", false, ""},
		{"exposed ports alone need nothing", container.Config{ExposedPorts: tcp80},
			container.HostConfig{}, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEngine(t, &fakeFunctions{})
			if !tt.noPorts {
				e.SetPorts(&fakePorts{})
			}
			cfg := tt.cfg
			cfg.Image = "busybox"
			_, err := e.Create(context.Background(), engine.CreateRequest{Namespace: "default", Config: &cfg, HostConfig: &tt.hc, Client: tt.client})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("create: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("create err = %v, want %q", err, tt.wantErr)
			case tt.wantErr != "" && engine.KindOf(err) != engine.KindInvalid:
				t.Fatalf("create err kind %v, want invalid (400)", engine.KindOf(err))
			}
		})
	}
}

func TestStartWithATakenPortFailsAsDocker(t *testing.T) {
	fns := &fakeFunctions{}
	e, _ := newEngine(t, fns)
	msg := "driver failed programming external connectivity on endpoint web (abc): Error starting userland proxy: listen tcp4 0.0.0.0:18080: bind: address already in use"
	e.SetPorts(&fakePorts{failWith: &engine.Error{Kind: engine.KindInternal, Message: msg}})
	ctx := context.Background()
	_, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "web", Client: "fwd",
		Config:     &container.Config{Image: "busybox", ExposedPorts: network.PortSet{port("80/tcp"): {}}},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{port("80/tcp"): {{HostPort: "18080"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Start(ctx, "default", "web")
	if err == nil || !strings.Contains(err.Error(), msg) || engine.KindOf(err) != engine.KindInternal {
		t.Fatalf("start err = %v, want Docker's 500 %q", err, msg)
	}
	c, _ := e.Container(ctx, "default", "web")
	if c.State.Status != engine.StatusCreated || c.State.ExitCode != 128 || c.State.Error != msg || c.Ports != nil {
		t.Fatalf("state %+v ports %v, want created, 128 and the error", c.State, c.Ports)
	}
	if c.Instance != "" {
		t.Fatalf("an instance was made (%q) for a start that could not bind its ports", c.Instance)
	}
}

func TestPortsOfARunThatEndsAreReleased(t *testing.T) {
	e, _ := newEngine(t, &fakeFunctions{}) // the agent never calls back: the run fails
	ports := &fakePorts{}
	e.SetPorts(ports)
	ctx := context.Background()
	_, err := e.Create(ctx, engine.CreateRequest{Namespace: "default", Name: "web", Client: "fwd",
		Config:     &container.Config{Image: "busybox", ExposedPorts: network.PortSet{port("80/tcp"): {}}},
		HostConfig: &container.HostConfig{PublishAllPorts: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "default", "web"); err == nil {
		t.Fatal("start without an agent succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ports.calls() != "published [1] released [1]" {
		if time.Now().After(deadline) {
			t.Fatalf("calls: %s", ports.calls())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, _ := e.Container(ctx, "default", "web")
	if c.Ports != nil || len(engine.PortsShown(c)) != 0 {
		t.Fatalf("an exited container shows ports %v", engine.PortsShown(c))
	}
}

func TestPortSummariesListBindingsThenExposedPorts(t *testing.T) {
	c := &engine.Container{
		State:  engine.State{Status: engine.StatusRunning},
		Config: &container.Config{ExposedPorts: network.PortSet{port("80/tcp"): {}, port("82/tcp"): {}, port("81/tcp"): {}}},
		Ports: network.PortMap{
			port("80/tcp"): {{HostIP: netip.MustParseAddr("::"), HostPort: "8080"}, {HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "8080"}},
			port("81/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "32768"}},
		},
	}
	var got []string
	for _, s := range engine.PortSummaries(c) {
		got = append(got, fmt.Sprintf("%v:%d->%d/%s", s.IP, s.PublicPort, s.PrivatePort, s.Type))
	}
	want := "0.0.0.0:8080->80/tcp :::8080->80/tcp 127.0.0.1:32768->81/tcp invalid IP:0->82/tcp"
	if strings.Join(got, " ") != want {
		t.Fatalf("summaries\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	shown := engine.PortsShown(c)
	if v, ok := shown[port("82/tcp")]; !ok || v != nil {
		t.Fatalf("an exposed port without binding shows %v, want null", v)
	}
}

func TestHostPortRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		bad    bool
	}{
		{in: "", lo: 0, hi: 0},
		{in: "0", lo: 0, hi: 0}, // any free port, as Docker's allocator (testcontainers-go sends it)
		{in: "8080", lo: 8080, hi: 8080},
		{in: "8000-8010", lo: 8000, hi: 8010},
		{in: "8010-8000", bad: true},
		{in: "70000", bad: true},
		{in: "x", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			lo, hi, err := engine.HostPortRange(tt.in)
			if (err != nil) != tt.bad || lo != tt.lo || hi != tt.hi {
				t.Fatalf("HostPortRange(%q) = %d, %d, %v; want %d, %d, bad %v", tt.in, lo, hi, err, tt.lo, tt.hi, tt.bad)
			}
		})
	}
}
