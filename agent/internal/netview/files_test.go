package netview

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sockerless/sockerless/agent/proto"
)

func TestHostsFileLaidOutAsDocker(t *testing.T) {
	// What docker 20.10 wrote for: docker run --network n --hostname hh
	// --domainname example.com --add-host foo:1.2.3.4 --add-host
	// host.docker.internal:host-gateway (addresses aside), and for a
	// --link on the default bridge.
	tests := []struct {
		name string
		view proto.NetworkView
		want string
	}{
		{"user network with extra hosts", proto.NetworkView{DNS: true, Hosts: []proto.HostEntry{
			{IP: "1.2.3.4", Names: []string{"foo"}},
			{IP: "127.17.0.1", Names: []string{"host.docker.internal"}},
			{IP: "127.20.0.3", Names: []string{"hh.example.com", "hh"}},
		}}, localhostLines + "1.2.3.4\tfoo\n127.17.0.1\thost.docker.internal\n127.20.0.3\thh.example.com hh\n"},
		{"default bridge with a link", proto.NetworkView{Hosts: []proto.HostEntry{
			{IP: "1.2.3.4", Names: []string{"foo"}},
			{IP: "127.17.0.3", Names: []string{"bal", "c3f9276569b0", "bdb"}},
			{IP: "127.17.0.4", Names: []string{"42ee1b463ee7"}},
		}}, localhostLines + "1.2.3.4\tfoo\n127.17.0.3\tbal c3f9276569b0 bdb\n127.17.0.4\t42ee1b463ee7\n"},
		{"two networks", proto.NetworkView{Hosts: []proto.HostEntry{
			{IP: "127.20.0.3", Names: []string{"01ce431f378d"}},
			{IP: "127.21.0.2", Names: []string{"01ce431f378d"}},
		}}, localhostLines + "127.20.0.3\t01ce431f378d\n127.21.0.2\t01ce431f378d\n"},
		{"none", proto.NetworkView{}, localhostLines},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			v := New(Config{Root: root, DNSAddr: freeUDP(t)})
			defer v.Close()
			if err := v.Apply(t.Context(), tt.view); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(root, "etc/hosts"))
			if err != nil || string(got) != tt.want {
				t.Fatalf("/etc/hosts =\n%s\nwant\n%s (%v)", got, tt.want, err)
			}
		})
	}
}

func TestResolvConf(t *testing.T) {
	const orig = "# the instance's\nsearch corp.example\nnameserver 10.255.255.53\noptions edns0\n"
	tests := []struct {
		name string
		view proto.NetworkView
		want string
	}{
		{"embedded DNS with --dns-search and --dns-option", proto.NetworkView{DNS: true, DNSSearch: []string{"a.b"}, DNSOptions: []string{"timeout:2"}},
			"search a.b\nnameserver 127.0.0.11\noptions timeout:2 ndots:0\n"},
		{"embedded DNS keeps the instance's search domains", proto.NetworkView{DNS: true},
			"search corp.example\nnameserver 127.0.0.11\noptions ndots:0\n"},
		{"an ndots option replaces ndots:0", proto.NetworkView{DNS: true, DNSOptions: []string{"ndots:3"}},
			"search corp.example\nnameserver 127.0.0.11\noptions ndots:3\n"},
		{"default bridge keeps the instance's", proto.NetworkView{}, orig},
		{"default bridge with --dns", proto.NetworkView{DNSServers: []string{"8.8.8.8"}, DNSSearch: []string{"x.y"}},
			"search x.y\nnameserver 8.8.8.8\noptions edns0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte(orig), 0o644)
			dnsAddr := freeUDP(t)
			v := New(Config{Root: root, DNSAddr: dnsAddr})
			defer v.Close()
			if err := v.Apply(t.Context(), tt.view); err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if tt.view.DNS { // the test's server is not on :53
				want = replaceNameserver(want, dnsAddr)
			}
			got, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
			if string(got) != want {
				t.Fatalf("resolv.conf =\n%s\nwant\n%s", got, want)
			}
			// The instance's resolvers stay the upstream ones.
			if ups := v.upstreams(tt.view); len(tt.view.DNSServers) == 0 && (len(ups) != 1 || ups[0] != "10.255.255.53:53") {
				t.Fatalf("upstreams = %v", ups)
			}
		})
	}
}

func TestApplyIsIdempotentAndRestores(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	const orig = "nameserver 10.0.0.2\n"
	os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte(orig), 0o644)
	v := New(Config{Root: root, DNSAddr: freeUDP(t)})
	defer v.Close()
	view := proto.NetworkView{DNS: true, Names: map[string][]string{"db": {"127.18.0.2"}}}
	for range 2 {
		if err := v.Apply(t.Context(), view); err != nil {
			t.Fatal(err)
		}
	}
	// Disconnected from its user network: back to the instance's resolver.
	if err := v.Apply(t.Context(), proto.NetworkView{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf")); string(got) != orig {
		t.Fatalf("resolv.conf = %q, want the instance's %q", got, orig)
	}
}
