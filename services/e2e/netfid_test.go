package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestEndpointFidelity: what docker-py's suite sends at API 1.41, against
// Sockerless and the Docker engine: a legacy Config.MacAddress shows in
// NetworkSettings (Sockerless warns that it is not applied), endpoint
// driver options are kept and shown, and a volume driver is shown while
// the container makes no volume.
func TestEndpointFidelity(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			var created struct {
				Id       string
				Warnings []string
			}
			h.must(t, http.StatusCreated, "POST", "/containers/create", map[string]any{
				"Image": "busybox", "Cmd": []string{"sleep", "60"}, "MacAddress": "02:42:ac:11:00:0a",
				"HostConfig": map[string]any{"NetworkMode": "bridge", "VolumeDriver": "foo"},
				"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{
					"bridge": map[string]any{"DriverOpts": map[string]string{"com.docker-py.setting": "on"}}}},
			}, &created)
			t.Cleanup(func() { h.call(t, "DELETE", "/containers/"+created.Id+"?force=1", nil) })
			if h.name != "docker" && !strings.Contains(strings.Join(created.Warnings, "\n"), "MAC address") {
				t.Errorf("no warning that the MAC address is not applied: %q", created.Warnings)
			}
			h.must(t, http.StatusNoContent, "POST", "/containers/"+created.Id+"/start", nil, nil)
			var c struct {
				HostConfig      struct{ VolumeDriver string }
				NetworkSettings struct {
					MacAddress string
					Networks   map[string]struct {
						MacAddress string
						DriverOpts map[string]string
					}
				}
			}
			h.must(t, http.StatusOK, "GET", "/containers/"+created.Id+"/json", nil, &c)
			if c.NetworkSettings.MacAddress != "02:42:ac:11:00:0a" || c.NetworkSettings.Networks["bridge"].MacAddress != "02:42:ac:11:00:0a" {
				t.Errorf("MAC address shown as %q / %q", c.NetworkSettings.MacAddress, c.NetworkSettings.Networks["bridge"].MacAddress)
			}
			if got := c.NetworkSettings.Networks["bridge"].DriverOpts["com.docker-py.setting"]; got != "on" {
				t.Errorf("endpoint driver option shown as %q", got)
			}
			if c.HostConfig.VolumeDriver != "foo" {
				t.Errorf("VolumeDriver %q", c.HostConfig.VolumeDriver)
			}
			// Making a volume with that driver is another matter.
			code, b := h.call(t, "POST", "/containers/create", map[string]any{"Image": "busybox",
				"HostConfig": map[string]any{"VolumeDriver": "foo", "Binds": []string{uniq("vd") + ":/data"}}})
			if code < 400 {
				t.Errorf("a volume with driver foo: %d %s", code, b)
			}
		})
	}
}

// TestNetworkAuxAddressesAndInfo: --aux-address is reserved (the address
// is never a container's) and shown; docker info reports a function
// instance's CPUs and memory.
func TestNetworkAuxAddressesAndInfo(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			net := "aux-" + h.name + runID
			t.Cleanup(func() { docker(t, h.host, "network", "rm", net) })
			mustDocker(t, h.host, "network", "create", "--subnet", "127.77.0.0/29", "--aux-address", "router=127.77.0.2", net)
			got := strings.TrimSpace(mustDocker(t, h.host, "network", "inspect", "-f", "{{json (index .IPAM.Config 0).AuxiliaryAddresses}}", net))
			if got != `{"router":"127.77.0.2"}` {
				t.Fatalf("AuxiliaryAddresses %s", got)
			}
			name := unique("aux-" + h.name)
			t.Cleanup(func() { docker(t, h.host, "rm", "-f", name) })
			mustDocker(t, h.host, "run", "-d", "--name", name, "--network", net, "busybox", "sleep", "60")
			ip := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+net+"\").IPAddress}}", name))
			if ip != "127.77.0.3" {
				t.Fatalf("first container address %s, want 127.77.0.3 (.1 gateway, .2 reserved)", ip)
			}
			if r := docker(t, h.host, "run", "--rm", "--network", net, "--ip", "127.77.0.2", "busybox", "true"); r.code == 0 {
				t.Fatalf("a container got the reserved address")
			}
			if r := docker(t, h.host, "network", "create", "--subnet", "127.78.0.0/29", "--aux-address", "x=127.79.0.1", net+"b"); r.code == 0 {
				docker(t, h.host, "network", "rm", net+"b")
				t.Fatalf("an auxiliary address outside the subnet was accepted")
			}
			if got := strings.TrimSpace(mustDocker(t, h.host, "info", "-f", "{{.NCPU}} {{.MemTotal}}")); got != "1 536870912" {
				t.Fatalf("docker info NCPU MemTotal = %s, want a function instance's 1 536870912", got)
			}
		})
	}
}
