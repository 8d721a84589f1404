package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runID makes names unique on the machine's Docker engine, which other
// test runs share.
var runID = fmt.Sprintf("%d", os.Getpid())

// networkInspect decodes docker network inspect of one network.
func networkInspect(t *testing.T, host, ref string) map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(mustDocker(t, host, "network", "inspect", ref)), &out); err != nil || len(out) != 1 {
		t.Fatalf("network inspect %s: %v (%d objects)", ref, err, len(out))
	}
	return out[0]
}

// wantFail runs docker and checks it fails with stderr containing want.
func wantFail(t *testing.T, host, want string, args ...string) {
	t.Helper()
	r := docker(t, host, args...)
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Fatalf("docker %s: exit %d stderr %q, want a failure saying %q", strings.Join(args, " "), r.code, r.stderr, want)
	}
}

func TestNetworkLifecycle(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			net := "net-" + h.name + "-" + runID
			other := "net2-" + h.name + "-" + runID
			ctr := "netc-" + h.name + "-" + runID
			t.Cleanup(func() {
				docker(t, h.host, "rm", "-f", ctr)
				docker(t, h.host, "network", "rm", net, other)
			})
			since := fmt.Sprint(time.Now().Add(-time.Second).Unix())
			ls := mustDocker(t, h.host, "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
			for _, want := range []string{"bridge bridge local", "host host local", "none null local"} {
				if !strings.Contains(ls, want+"\n") {
					t.Fatalf("network ls = %q, want a line %q", ls, want)
				}
			}
			id := strings.TrimSpace(mustDocker(t, h.host, "network", "create", "--label", "team=t"+h.name, net))
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
				t.Fatalf("network create printed %q, want a 64-hex ID", id)
			}
			wantFail(t, h.host, "network with name "+net+" already exists", "network", "create", net)
			in := networkInspect(t, h.host, net)
			ipam := in["IPAM"].(map[string]any)
			cfgs := ipam["Config"].([]any)
			if in["Id"] != id || in["Name"] != net || in["Driver"] != "bridge" || in["Scope"] != "local" || ipam["Driver"] != "default" || len(cfgs) != 1 {
				t.Fatalf("network inspect = %v", in)
			}
			subnet := netip.MustParsePrefix(cfgs[0].(map[string]any)["Subnet"].(string))
			gateway := netip.MustParseAddr(cfgs[0].(map[string]any)["Gateway"].(string))
			if !subnet.Contains(gateway) || in["Labels"].(map[string]any)["team"] != "t"+h.name {
				t.Fatalf("subnet %v gateway %v labels %v", subnet, gateway, in["Labels"])
			}
			if h.name != "docker" && !netip.MustParsePrefix("127.0.0.0/8").Contains(subnet.Addr()) {
				t.Fatalf("subnet %v is not a loopback range", subnet)
			}
			if c := in["Containers"].(map[string]any); len(c) != 0 {
				t.Fatalf("Containers of a new network = %v", c)
			}
			// By ID prefix too.
			if in := networkInspect(t, h.host, id[:10]); in["Name"] != net {
				t.Fatalf("inspect by ID prefix = %v", in["Name"])
			}
			for _, f := range [][]string{{"name=" + net}, {"label=team=t" + h.name}, {"id=" + id[:12]}, {"driver=bridge", "name=" + net}, {"type=custom", "name=" + net}, {"dangling=true", "name=" + net}} {
				args := []string{"network", "ls", "--format", "{{.Name}}"}
				for _, v := range f {
					args = append(args, "--filter", v)
				}
				if got := strings.Fields(mustDocker(t, h.host, args...)); !slices.Equal(got, []string{net}) {
					t.Fatalf("network ls --filter %v = %v, want [%s]", f, got, net)
				}
			}
			if got := strings.Fields(mustDocker(t, h.host, "network", "ls", "--format", "{{.Name}}", "--filter", "type=builtin")); !slices.Equal(got, []string{"bridge", "host", "none"}) {
				t.Fatalf("network ls --filter type=builtin = %v", got)
			}
			wantFail(t, h.host, "Invalid filter 'bogus'", "network", "ls", "--filter", "bogus=1")

			// A running member: its address, and network inspect's Containers.
			cid := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "--name", ctr, "--network", net, "--network-alias", "db-alias", "busybox", "sleep", "300"))
			ci := inspect(t, h.host, ctr)
			if mode := ci["HostConfig"].(map[string]any)["NetworkMode"]; mode != net {
				t.Fatalf("NetworkMode = %v, want %s", mode, net)
			}
			ep := ci["NetworkSettings"].(map[string]any)["Networks"].(map[string]any)[net].(map[string]any)
			ip := netip.MustParseAddr(ep["IPAddress"].(string))
			if !subnet.Contains(ip) || ep["Gateway"] != gateway.String() || ep["IPPrefixLen"] != float64(subnet.Bits()) || ep["NetworkID"] != id {
				t.Fatalf("endpoint = %v, want an address of %v", ep, subnet)
			}
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(ep["EndpointID"].(string)) || !regexp.MustCompile(`^02:42:`).MatchString(ep["MacAddress"].(string)) {
				t.Fatalf("endpoint ID %v MAC %v", ep["EndpointID"], ep["MacAddress"])
			}
			if !slices.Contains(anyStrings(ep["Aliases"]), "db-alias") {
				t.Fatalf("Aliases = %v, want db-alias", ep["Aliases"])
			}
			members := networkInspect(t, h.host, net)["Containers"].(map[string]any)
			m, ok := members[cid].(map[string]any)
			if !ok || m["Name"] != ctr || m["IPv4Address"] != fmt.Sprintf("%s/%d", ip, subnet.Bits()) || m["EndpointID"] != ep["EndpointID"] {
				t.Fatalf("network inspect Containers = %v", members)
			}
			// (docker 20.10 counts every user network as dangling in its
			// list, a bug later versions fixed.)
			if got := strings.Fields(mustDocker(t, h.host, "network", "ls", "--format", "{{.Name}}", "--filter", "dangling=true", "--filter", "name="+net)); h.name != "docker" && len(got) != 0 {
				t.Fatalf("a network with a member is dangling: %v", got)
			}
			wantFail(t, h.host, "has active endpoints", "network", "rm", net)

			// connect, disconnect.
			mustDocker(t, h.host, "network", "create", "--label", "prune="+runID+h.name, other)
			mustDocker(t, h.host, "network", "connect", "--alias", "second", other, ctr)
			wantFail(t, h.host, "already exists in network", "network", "connect", other, ctr)
			nets := inspect(t, h.host, ctr)["NetworkSettings"].(map[string]any)["Networks"].(map[string]any)
			if len(nets) != 2 || nets[other].(map[string]any)["IPAddress"] == "" {
				t.Fatalf("after connect: Networks = %v", nets)
			}
			mustDocker(t, h.host, "network", "disconnect", other, ctr)
			if nets := inspect(t, h.host, ctr)["NetworkSettings"].(map[string]any)["Networks"].(map[string]any); len(nets) != 1 || nets[net] == nil {
				t.Fatalf("after disconnect: Networks = %v", nets)
			}
			if c := networkInspect(t, h.host, other)["Containers"].(map[string]any); len(c) != 0 {
				t.Fatalf("after disconnect the network still has %v", c)
			}
			wantFail(t, h.host, "is not connected to network "+other, "network", "disconnect", other, ctr)

			// Once stopped, the address is released and the network goes.
			mustDocker(t, h.host, "stop", "-t", "0", ctr)
			if ep := inspect(t, h.host, ctr)["NetworkSettings"].(map[string]any)["Networks"].(map[string]any)[net].(map[string]any); ep["IPAddress"] != "" || ep["NetworkID"] != id {
				t.Fatalf("a stopped container's endpoint = %v", ep)
			}
			mustDocker(t, h.host, "rm", ctr)
			if out := mustDocker(t, h.host, "network", "rm", net); strings.TrimSpace(out) != net {
				t.Fatalf("network rm printed %q", out)
			}
			wantFail(t, h.host, "network "+net+" not found", "network", "inspect", net)
			// docker events: the network's life, and its member's joins.
			evs := strings.Fields(mustDocker(t, h.host, "events", "--since", since, "--until", fmt.Sprint(time.Now().Add(time.Second).Unix()),
				"--filter", "type=network", "--filter", "network="+id, "--format", "{{.Action}}"))
			if want := []string{"create", "connect", "disconnect", "destroy"}; !slices.Equal(evs, want) {
				t.Fatalf("network events %v, want %v (the run joins, the stop leaves)", evs, want)
			}
			if out := mustDocker(t, h.host, "network", "prune", "-f", "--filter", "label=prune="+runID+h.name); !strings.Contains(out, "Deleted Networks:\n"+other+"\n") {
				t.Fatalf("network prune printed %q", out)
			}
			wantFail(t, h.host, "network "+other+" not found", "network", "inspect", other)
		})
	}
}

func TestNetworkRefusals(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			wantFail(t, h.host, "bridge is a pre-defined network and cannot be removed", "network", "rm", "bridge")
			wantFail(t, h.host, "network nope-"+runID+" not found", "run", "--rm", "--network", "nope-"+runID, "busybox", "true")
			wantFail(t, h.host, "network-scoped alias", "run", "--rm", "--network-alias", "x", "busybox", "true")
			wantFail(t, h.host, "operation is not permitted on predefined", "network", "create", "bridge")
		})
	}
	for _, h := range s.hosts() { // what Sockerless cannot carry out is refused, naming it
		t.Run(h.name+"/unsupported", func(t *testing.T) {
			wantFail(t, h.host, `network mode "host" is not supported by Sockerless`, "run", "--rm", "--network", "host", "busybox", "true")
			wantFail(t, h.host, `is not supported by Sockerless`, "run", "--rm", "--network", "container:x", "busybox", "true")
			wantFail(t, h.host, `network driver "overlay" is not supported`, "network", "create", "-d", "overlay", "ov-"+runID)
			wantFail(t, h.host, `IPv6 (--ipv6) is not supported`, "network", "create", "--ipv6", "v6-"+runID)
			wantFail(t, h.host, `internal network (--internal) is not supported`, "network", "create", "--internal", "in-"+runID)
			wantFail(t, h.host, `subnet 172.28.0.0/16 is not supported by Sockerless`, "network", "create", "--subnet", "172.28.0.0/16", "sub-"+runID)
		})
	}
}

func TestNetworkDefaultBridgeAddress(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			ctr := "bridged-" + h.name + "-" + runID
			t.Cleanup(func() { docker(t, h.host, "rm", "-f", ctr) })
			mustDocker(t, h.host, "run", "-d", "--name", ctr, "busybox", "sleep", "300")
			ns := inspect(t, h.host, ctr)["NetworkSettings"].(map[string]any)
			b := ns["Networks"].(map[string]any)["bridge"].(map[string]any)
			if ns["IPAddress"] == "" || ns["IPAddress"] != b["IPAddress"] || ns["Gateway"] != b["Gateway"] || ns["MacAddress"] != b["MacAddress"] {
				t.Fatalf("top-level address %v gateway %v, bridge endpoint %v", ns["IPAddress"], ns["Gateway"], b)
			}
			if ns["Ports"] == nil {
				t.Fatalf("Ports is null, docker has {}")
			}
			bridge := networkInspect(t, h.host, "bridge")
			if _, ok := bridge["Containers"].(map[string]any)[inspect(t, h.host, ctr)["Id"].(string)]; !ok {
				t.Fatalf("bridge's Containers lack %s", ctr)
			}
		})
	}
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// A --rm container's network is free as soon as docker run, or a docker
// wait for its exit, answers: docker network rm right after works (as
// under docker), on either store; the container's and the network's
// events come in docker's order (on Firestore the exit and the removal
// are one write, and the addresses are released during it).
func TestNetworkFreeAfterRunRm(t *testing.T) {
	s := requireStack(t)
	hosts := append(referenceHosts(t, s), struct{ name, host string }{"firestore", firestoreStack(t).direct})
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			net, name := uniq("rmnet"), uniq("rmc")
			since := time.Now().Add(-time.Second).Unix()
			mustDocker(t, h.host, "network", "create", net)
			r := docker(t, h.host, "run", "--rm", "--name", name, "--network", net, "busybox", "sh", "-c", "echo bye; exit 3")
			if r.code != 3 || r.stdout != "bye\n" {
				t.Fatalf("run --rm: exit %d, %q %q; want 3 and bye", r.code, r.stdout, r.stderr)
			}
			mustDocker(t, h.host, "network", "rm", net)
			var got []string
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				out := mustDocker(t, h.host, "events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
					"--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes \"exitCode\"}}")
				got = got[:0]
				for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
					if f := strings.Fields(l); len(f) >= 3 && (f[2] == name || f[2] == net) {
						got = append(got, strings.Join(append(f[:2:2], f[3:]...), " "))
					}
				}
				if len(got) >= 8 || time.Now().After(deadline) {
					break
				}
			}
			want := "network create, container create, container attach, network connect, container start, container die 3, network disconnect, container destroy, network destroy"
			if strings.Join(got, ", ") != want {
				t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, ", "), want)
			}

			mustDocker(t, h.host, "network", "create", net)
			defer docker(t, h.host, "network", "rm", net)
			id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "--rm", "--network", net, "busybox", "sh", "-c", "sleep 1; exit 4"))
			if code := strings.TrimSpace(mustDocker(t, h.host, "wait", id)); code != "4" {
				t.Fatalf("wait = %s, want 4", code)
			}
			mustDocker(t, h.host, "network", "rm", net)
		})
	}
}

// A start whose network went after the create fails, as docker's does,
// and leaves the container stopped and its network-less name free to try
// again on another network.
func TestNetworkGoneBeforeStart(t *testing.T) {
	s := requireStack(t)
	hosts := append(referenceHosts(t, s), struct{ name, host string }{"firestore", firestoreStack(t).direct})
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			net := uniq("gonenet")
			mustDocker(t, h.host, "network", "create", net)
			id := strings.TrimSpace(mustDocker(t, h.host, "create", "--network", net, "busybox", "true"))
			defer docker(t, h.host, "rm", "-f", id)
			mustDocker(t, h.host, "network", "rm", net)
			r := docker(t, h.host, "start", id)
			if r.code == 0 || !strings.Contains(r.stderr, "not found") {
				t.Fatalf("start on a removed network: exit %d, %q; want a not found error", r.code, r.stderr)
			}
			if st := strings.TrimSpace(mustDocker(t, h.host, "inspect", "--format", "{{.State.Running}}", id)); st != "false" {
				t.Fatalf("after the failed start: running %s", st)
			}
		})
	}
}
