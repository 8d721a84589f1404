package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestLegacyLinks: --link on the default bridge gives the alias in
// /etc/hosts and docker's link variables, inspect shows the link as
// docker does, ps names the target by the link too, and docker rm --link
// removes the link and nothing else; on a user network a link's alias
// resolves, also for a target that comes later.
func TestLegacyLinks(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			db, web, net := "lkdb-"+h.name+runID, "lkweb-"+h.name+runID, "lknet-"+h.name+runID
			up, user := "lkup-"+h.name+runID, "lkuser-"+h.name+runID
			t.Cleanup(func() {
				docker(t, h.host, "rm", "-f", db, web, up, user)
				docker(t, h.host, "network", "rm", net)
			})
			mustDocker(t, h.host, "run", "-d", "--name", db, "--expose", "80", "--expose", "81", "--expose", "82", "-e", "FOO=bar", "busybox", "sleep", "300")
			ip := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", db))
			out := mustDocker(t, h.host, "run", "--rm", "--link", db+":my-db", "busybox", "sh", "-c", "env; cat /etc/hosts")
			for _, want := range []string{
				"MY_DB_NAME=/", "MY_DB_ENV_FOO=bar",
				"MY_DB_PORT=tcp://" + ip + ":80",
				"MY_DB_PORT_81_TCP=tcp://" + ip + ":81",
				"MY_DB_PORT_80_TCP_ADDR=" + ip,
				"MY_DB_PORT_80_TCP_END=tcp://" + ip + ":82",
			} {
				if !strings.Contains(out, want) {
					t.Fatalf("no %q in the linked container's env and hosts:\n%s", want, out)
				}
			}
			if !hostsLineHas(out, ip, "my-db", db) {
				t.Fatalf("no hosts line %s my-db … %s:\n%s", ip, db, out)
			}
			mustDocker(t, h.host, "run", "-d", "--name", web, "--link", db+":al", "busybox", "sleep", "300")
			if got := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{json .HostConfig.Links}}", web)); got != `["/`+db+`:/`+web+`/al"]` {
				t.Fatalf("HostConfig.Links = %s", got)
			}
			if out := mustDocker(t, h.host, "exec", web, "cat", "/etc/hosts"); !hostsLineHas(out, ip, "al") {
				t.Fatalf("no alias in the running container's hosts:\n%s", out)
			}
			var names []string
			for _, line := range strings.Split(mustDocker(t, h.host, "ps", "--no-trunc", "--format", "{{.Names}}"), "\n") {
				names = append(names, strings.Split(strings.TrimSpace(line), ",")...)
			}
			if !slices.Contains(names, web+"/al") {
				t.Fatalf("docker ps names no %s/al: %q", web, names)
			}
			if r := docker(t, h.host, "rm", "--link", web); r.code == 0 || !strings.Contains(r.stderr, "cannot remove the default link name") {
				t.Fatalf("rm --link of a container name: %d %s", r.code, r.stderr)
			}
			if r := docker(t, h.host, "rm", "--link", web+"/nope"); r.code == 0 || !strings.Contains(r.stderr, "No such container: "+web+"/nope") {
				t.Fatalf("rm --link of a missing link: %d %s", r.code, r.stderr)
			}
			mustDocker(t, h.host, "rm", "--link", web+"/al")
			if got := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{json .HostConfig.Links}}", web)); got != "null" {
				t.Fatalf("after rm --link, HostConfig.Links = %s", got)
			}
			var st struct{ State struct{ Running bool } }
			if err := json.Unmarshal([]byte(mustDocker(t, h.host, "inspect", "-f", "{{json .}}", db)), &st); err != nil || !st.State.Running {
				t.Fatalf("the link target is gone or stopped after rm --link: %v", err)
			}
			if out := mustDocker(t, h.host, "exec", web, "cat", "/etc/hosts"); hostsLineHas(out, ip, "al") {
				t.Fatalf("the alias is still in hosts after rm --link:\n%s", out)
			}
			// A user network: the link's alias resolves once its target
			// (created after) joins.
			mustDocker(t, h.host, "network", "create", net)
			mustDocker(t, h.host, "run", "-d", "--name", user, "--network", net, "--link", up+":upstream", "busybox", "sleep", "300")
			if got := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{json .HostConfig.Links}} {{json (index .NetworkSettings.Networks \""+net+"\").Links}}", user)); got != `null ["`+up+`:upstream"]` {
				t.Fatalf("a link on a user network shows as %s", got)
			}
			mustDocker(t, h.host, "run", "-d", "--name", up, "--network", net, "busybox", "sleep", "300")
			if r := docker(t, h.host, "exec", user, "nslookup", "upstream"); r.code != 0 {
				t.Fatalf("the link alias does not resolve on the user network: %d %s %s", r.code, r.stdout, r.stderr)
			}
			if r := docker(t, h.host, "exec", up, "nslookup", "upstream"); r.code == 0 {
				t.Fatalf("the link alias resolves for another member: %s", r.stdout)
			}
		})
	}
}

// TestLinkToStoppedContainer: docker refuses to start a container whose
// link target does not run.
func TestLinkToStoppedContainer(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			db := "lkstop-" + h.name + runID
			t.Cleanup(func() { docker(t, h.host, "rm", "-f", db) })
			mustDocker(t, h.host, "create", "--name", db, "busybox", "true")
			r := docker(t, h.host, "run", "--rm", "--link", db+":x", "busybox", "true")
			if r.code == 0 || !strings.Contains(r.stderr, "Cannot link to a non running container: /"+db+" AS /") {
				t.Fatalf("run linked to a created container: %d %s", r.code, r.stderr)
			}
		})
	}
}

// hostsLineHas reports whether an /etc/hosts text has a line for ip
// naming every one of names.
func hostsLineHas(hosts, ip string, names ...string) bool {
	for _, line := range strings.Split(hosts, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != ip {
			continue
		}
		ok := true
		for _, n := range names {
			ok = ok && slices.Contains(f[1:], n)
		}
		if ok {
			return true
		}
	}
	return false
}
