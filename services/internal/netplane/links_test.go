package netplane

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// TestLinkVars checks a link's variables against what the Docker engine
// 20.10 gave `docker run --link lk-db:my-db` for a container with
// --expose 80 81 82 90 53/udp -e FOO=1 -e HOME=/x (order aside).
func TestLinkVars(t *testing.T) {
	ports := exposedSorted(t, "80/tcp", "90/tcp", "53/udp", "82/tcp", "81/tcp")
	got := linkVars("my-db", "/lk-web/my-db", "172.17.0.2", ports, []string{"FOO=1", "HOME=/x", "PATH=/bin"})
	want := []string{
		"MY_DB_ENV_FOO=1",
		"MY_DB_NAME=/lk-web/my-db",
		"MY_DB_PORT=udp://172.17.0.2:53",
		"MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
		"MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
		"MY_DB_PORT_53_UDP_PORT=53",
		"MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_PORT_80_TCP=tcp://172.17.0.2:80",
		"MY_DB_PORT_80_TCP_ADDR=172.17.0.2",
		"MY_DB_PORT_80_TCP_END=tcp://172.17.0.2:82",
		"MY_DB_PORT_80_TCP_PORT=80",
		"MY_DB_PORT_80_TCP_PORT_END=82",
		"MY_DB_PORT_80_TCP_PORT_START=80",
		"MY_DB_PORT_80_TCP_PROTO=tcp",
		"MY_DB_PORT_80_TCP_START=tcp://172.17.0.2:80",
		"MY_DB_PORT_81_TCP=tcp://172.17.0.2:81",
		"MY_DB_PORT_81_TCP_ADDR=172.17.0.2",
		"MY_DB_PORT_81_TCP_PORT=81",
		"MY_DB_PORT_81_TCP_PROTO=tcp",
		"MY_DB_PORT_82_TCP=tcp://172.17.0.2:82",
		"MY_DB_PORT_82_TCP_ADDR=172.17.0.2",
		"MY_DB_PORT_82_TCP_PORT=82",
		"MY_DB_PORT_82_TCP_PROTO=tcp",
		"MY_DB_PORT_90_TCP=tcp://172.17.0.2:90",
		"MY_DB_PORT_90_TCP_ADDR=172.17.0.2",
		"MY_DB_PORT_90_TCP_PORT=90",
		"MY_DB_PORT_90_TCP_PROTO=tcp",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

func TestLinkVarsWithoutPorts(t *testing.T) {
	got := linkVars("db", "/web/db", "127.17.0.2", nil, nil)
	if want := []string{"DB_NAME=/web/db"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSplitLink(t *testing.T) {
	for _, tc := range []struct{ in, name, alias string }{
		{"db:alias", "db", "alias"},
		{"db", "db", "db"},
		{"/db:/web/alias", "db", "alias"},
	} {
		if n, a := SplitLink(tc.in); n != tc.name || a != tc.alias {
			t.Errorf("SplitLink(%q) = %q, %q; want %q, %q", tc.in, n, a, tc.name, tc.alias)
		}
	}
}

// exposedSorted sorts ports as exposed does.
func exposedSorted(t *testing.T, specs ...string) []network.Port {
	t.Helper()
	set := network.PortSet{}
	for _, s := range specs {
		p, err := network.ParsePort(s)
		if err != nil {
			t.Fatal(err)
		}
		set[p] = struct{}{}
	}
	return exposed(&engine.Container{Config: &container.Config{ExposedPorts: set}})
}
