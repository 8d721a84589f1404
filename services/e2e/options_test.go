package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// Options Sockerless cannot carry out are refused at create with a 400
// naming them; none is accepted and ignored.
func TestRefusedOptionsNameThemselves(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			for _, c := range []struct {
				args []string
				name string
			}{
				{[]string{"--privileged"}, "HostConfig.Privileged"},
				{[]string{"--cap-add", "NET_ADMIN"}, "HostConfig.CapAdd"},
				{[]string{"--device", "/dev/null:/dev/xnull"}, "HostConfig.Devices"},
				{[]string{"--cgroup-parent", "x"}, "HostConfig.CgroupParent"},
				{[]string{"--volume-driver", "flocker", "-v", "vol:/x"}, "HostConfig.VolumeDriver"},
				{[]string{"--pid", "host"}, "HostConfig.PidMode"},
				{[]string{"--read-only"}, "HostConfig.ReadonlyRootfs"},
				{[]string{"--sysctl", "net.ipv4.ip_forward=1"}, "HostConfig.Sysctls"},
				// Refused by their planes, with their reasons.
				{[]string{"--network", "host"}, `network mode "host"`},
			} {
				args := append(append([]string{"create"}, c.args...), "busybox", "true")
				r := docker(t, h.host, args...)
				if r.code == 0 || !strings.Contains(r.stderr, c.name) || !strings.Contains(r.stderr, "not supported") {
					t.Errorf("docker %s: exit %d, stderr %q: want a refusal naming %s", strings.Join(args, " "), r.code, r.stderr, c.name)
				}
			}
		})
	}
}

// What docker does with a log driver it does not know, or a runtime: the
// same refusal; runc is the runtime inspect shows.
func TestLogDriverAndRuntimeAsDocker(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			code, b := h.call(t, "POST", "/containers/create", map[string]any{"Image": "busybox",
				"HostConfig": map[string]any{"LogConfig": map[string]any{"Type": "asdf"}}})
			if code != http.StatusBadRequest || !strings.Contains(string(b), `error looking up logging plugin asdf: plugin \"asdf\" not found`) {
				t.Errorf("unknown log driver: %d %s", code, b)
			}
			id := h.create(t, "", map[string]any{"HostConfig": map[string]any{"Runtime": "runc"}})
			var c struct{ HostConfig struct{ Runtime string } }
			h.must(t, http.StatusOK, "GET", "/containers/"+id+"/json", nil, &c)
			if c.HostConfig.Runtime != "runc" {
				t.Errorf("runtime %q", c.HostConfig.Runtime)
			}
			code, b = h.call(t, "POST", "/containers/create", map[string]any{"Image": "busybox", "HostConfig": map[string]any{"Runtime": "nope"}})
			if code != http.StatusBadRequest || !strings.Contains(string(b), "Unknown runtime specified nope") {
				t.Errorf("unknown runtime: %d %s", code, b)
			}
		})
	}
}

// --group-add, the environment's order and $HOSTNAME are what docker gives.
func TestGroupAddEnvAndHostname(t *testing.T) {
	s := requireStack(t)
	var outs []string
	for _, h := range pauseHosts(t, s) {
		out := mustDocker(t, h.host, "run", "--rm", "--group-add", "1000", "--group-add", "nogroup", "--hostname", "myhost",
			"-e", "ZED=1", "-e", "PATH=/bin:/usr/bin", "-e", "ALPHA=2", "busybox", "sh", "-c", `id -G; echo $HOSTNAME; env | grep -v '^HOME=\|^SHLVL=\|^PWD=\|^_='`)
		outs = append(outs, h.name+":\n"+out)
		if !strings.Contains(out, "0 10") && !strings.Contains(out, "0 1000 65534") {
			t.Errorf("%s: groups: %q", h.name, out)
		}
		// Through the API: the docker CLI (28.x) sends -e variables in no
		// fixed order, against the Docker engine too.
		a := apiHost{name: h.name, host: h.host, client: unixClient(strings.TrimPrefix(h.host, "unix://"))}
		id := a.create(t, "", map[string]any{"Env": []string{"ZED=1", "ALPHA=2"}})
		var cfg struct{ Config struct{ Env []string } }
		a.must(t, http.StatusOK, "GET", "/containers/"+id+"/json", nil, &cfg)
		if strings.Join(cfg.Config.Env, " ") != "ZED=1 ALPHA=2 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
			t.Errorf("%s: Config.Env %v: want the user's first, then the image's", h.name, cfg.Config.Env)
		}
	}
	for _, o := range outs[1:] {
		if o[strings.Index(o, "\n"):] != outs[0][strings.Index(outs[0], "\n"):] {
			t.Errorf("outputs differ:\n%s\n%s", outs[0], o)
		}
	}
	if !strings.Contains(outs[0], "0 10 1000 65534\nmyhost\n") && !strings.Contains(outs[0], "0 1000 65534\nmyhost\n") {
		t.Errorf("groups and hostname: %s", outs[0])
	}
}
