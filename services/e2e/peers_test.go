package e2e

import (
	gonet "net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// webServer runs busybox httpd on port 80 of a container serving body.
func webServer(t *testing.T, host, name string, body string, args ...string) {
	t.Helper()
	webServerOn(t, host, name, "80", body, args...)
}

// webServerOn runs busybox httpd on port of a container serving body.
func webServerOn(t *testing.T, host, name, port, body string, args ...string) {
	t.Helper()
	run := append([]string{"run", "-d", "--name", name}, args...)
	run = append(run, "busybox", "sh", "-c", "mkdir -p /www && echo "+body+" > /www/index.html && exec httpd -f -p "+port+" -h /www")
	mustDocker(t, host, run...)
}

// httpGet is a shell command fetching http://HOST/ with nc (the test
// image's busybox wget crashes, being linked statically) and printing the
// body's last line.
func httpGet(hostname string) string { return httpGetPort(hostname, "80") }

// httpGetPort is httpGet on another port.
func httpGetPort(hostname, port string) string {
	return "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 " + hostname + " " + port + " | tail -n 1 | grep ."
}

// fetch gets http://hostname/ from a fresh container run with args and
// returns its output, trying again while the server comes up (its port is
// reported within a fraction of a second).
func fetch(t *testing.T, host, hostname string, args ...string) result {
	t.Helper()
	return fetchPort(t, host, hostname, "80", args...)
}

// fetchPort is fetch on another port.
func fetchPort(t *testing.T, host, hostname, port string, args ...string) result {
	t.Helper()
	run := append([]string{"run", "--rm"}, args...)
	run = append(run, "busybox", "sh", "-c", "i=0; while [ $i -lt 50 ]; do "+httpGetPort(hostname, port)+" && exit 0; sleep 0.2; i=$((i+1)); done; exit 1")
	return docker(t, host, run...)
}

func TestContainersReachEachOtherByName(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			net, other := "peers-"+h.name+runID, "elsewhere-"+h.name+runID
			db, web := "db-"+h.name+runID, "web-"+h.name+runID
			t.Cleanup(func() {
				docker(t, h.host, "rm", "-f", db, web)
				docker(t, h.host, "network", "rm", net, other)
			})
			mustDocker(t, h.host, "network", "create", net)
			mustDocker(t, h.host, "network", "create", other)
			webServer(t, h.host, db, "from-db", "--network", net, "--network-alias", "database", "--hostname", "dbhost")
			id := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{.Id}}", db))[:12]
			for _, name := range []string{db, "database", "dbhost", id, db + "." + net} {
				if r := fetch(t, h.host, name, "--network", net); r.code != 0 || strings.TrimSpace(r.stdout) != "from-db" {
					t.Fatalf("wget http://%s/ from %s: exit %d %q %s", name, net, r.code, r.stdout, r.stderr)
				}
			}
			// A container on another network neither resolves nor reaches db.
			if r := docker(t, h.host, "run", "--rm", "--network", other, "busybox", "nslookup", db); r.code == 0 {
				t.Fatalf("%s resolves from another network: %s", db, r.stdout)
			}
			ip := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+net+"\").IPAddress}}", db))
			if r := docker(t, h.host, "run", "--rm", "--network", other, "busybox", "sh", "-c", httpGet(ip)); r.code == 0 {
				t.Fatalf("%s reached from another network at %s", db, ip)
			}
			// Connected later, it is reachable at once, and reaches db. (It
			// serves on another port than db: see README, a container does
			// not reach a peer's port it serves on itself.)
			webServerOn(t, h.host, web, "8080", "from-web", "--network", other)
			mustDocker(t, h.host, "network", "connect", net, web)
			if r := fetchPort(t, h.host, web, "8080", "--network", net); r.code != 0 || strings.TrimSpace(r.stdout) != "from-web" {
				t.Fatalf("wget the connected container: exit %d %q %s", r.code, r.stdout, r.stderr)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				r := docker(t, h.host, "exec", web, "sh", "-c", httpGet(db))
				if r.code == 0 && strings.TrimSpace(r.stdout) == "from-db" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the connected container does not reach db: %d %q %s", r.code, r.stdout, r.stderr)
				}
				time.Sleep(200 * time.Millisecond)
			}
			mustDocker(t, h.host, "network", "disconnect", net, web)
			if r := docker(t, h.host, "exec", web, "nslookup", db); r.code == 0 {
				t.Fatalf("after disconnect %s still resolves %s", web, db)
			}
		})
	}
}

func TestDefaultBridgeByAddressLinksAndExtraHosts(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			svc := "svc-" + h.name + runID
			t.Cleanup(func() { docker(t, h.host, "rm", "-f", svc) })
			webServer(t, h.host, svc, "from-svc")
			ip := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", svc))
			id := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{.Id}}", svc))[:12]
			if r := fetch(t, h.host, ip); r.code != 0 || strings.TrimSpace(r.stdout) != "from-svc" {
				t.Fatalf("by address on the default bridge: %d %q %s", r.code, r.stdout, r.stderr)
			}
			// The default bridge resolves no names.
			if r := docker(t, h.host, "run", "--rm", "busybox", "nslookup", svc); r.code == 0 {
				t.Fatalf("the default bridge resolved %s: %s", svc, r.stdout)
			}
			if r := fetch(t, h.host, "svc-alias", "--link", svc+":svc-alias"); r.code != 0 || strings.TrimSpace(r.stdout) != "from-svc" {
				t.Fatalf("through --link: %d %q %s", r.code, r.stdout, r.stderr)
			}
			// GitLab's pattern: the service's short ID and alias pointed at its address.
			for _, name := range []string{id, "gitlab-alias"} {
				if r := fetch(t, h.host, name, "--add-host", id+":"+ip, "--add-host", "gitlab-alias:"+ip); r.code != 0 || strings.TrimSpace(r.stdout) != "from-svc" {
					t.Fatalf("through ExtraHosts %s: %d %q %s", name, r.code, r.stdout, r.stderr)
				}
			}
		})
	}
}

func TestHostsAndResolvConfAsDocker(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			net := "files-" + h.name + runID
			t.Cleanup(func() { docker(t, h.host, "network", "rm", net) })
			mustDocker(t, h.host, "network", "create", net)
			out := mustDocker(t, h.host, "run", "--rm", "--network", net, "--hostname", "hh", "--domainname", "example.com",
				"--add-host", "foo:1.2.3.4", "--dns-search", "a.b", "--dns-option", "timeout:2", "busybox", "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf")
			hosts, resolv, _ := strings.Cut(out, "---\n")
			lines := strings.Split(strings.TrimSpace(hosts), "\n")
			want := []string{"127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters", "1.2.3.4\tfoo"}
			if len(lines) != len(want)+1 || strings.Join(lines[:len(want)], "\n") != strings.Join(want, "\n") || !strings.HasSuffix(lines[len(want)], "\thh.example.com hh") {
				t.Fatalf("/etc/hosts =\n%s", hosts)
			}
			if resolv != "search a.b\nnameserver 127.0.0.11\noptions timeout:2 ndots:0\n" {
				t.Fatalf("/etc/resolv.conf =\n%s", resolv)
			}
		})
	}
}

// TestPeersAcrossControlPlaneRestart: after a restart of the control plane
// on the same state, running containers still reach each other by name
// (their agents keep their views; the new process routes their streams
// from the store), and a new container on the network reaches them, with
// no user action.
func TestPeersAcrossControlPlaneRestart(t *testing.T) {
	s := otherStack(t, nil, nil)
	net, db, web := "restart-net", "restart-db", "restart-web"
	mustDocker(t, s.direct, "network", "create", net)
	mustDocker(t, s.direct, "run", "-d", "--name", db, "--network", net, "nettest", "netserver", "9000")
	mustDocker(t, s.direct, "run", "-d", "--name", web, "--network", net, "nettest", "sleep", "600")
	ping := func(what string, args ...string) {
		t.Helper()
		if r := docker(t, s.direct, args...); r.code != 0 || len(strings.Fields(r.stdout)) != 2 {
			t.Fatalf("%s: exit %d %q %s", what, r.code, r.stdout, r.stderr)
		}
	}
	ping("before the restart", "exec", web, "netclient", "ping", db+":9000", "3")
	s.cp.stop()
	if err := s.startControlPlane(); err != nil {
		t.Fatal(err)
	}
	ping("a running peer after the restart", "exec", web, "netclient", "ping", db+":9000", "3")
	ping("a new container after the restart", "run", "--rm", "--network", net, "nettest", "netclient", "ping", db+":9000", "3")
	members := networkInspect(t, s.direct, net)["Containers"].(map[string]any)
	if len(members) != 2 {
		t.Fatalf("after the restart the network has %d members, want 2: %v", len(members), members)
	}
}

// TestHostGateway: --add-host host.docker.internal:host-gateway reaches a
// port of the client's machine that its user exposed (--expose-host-port
// of the --dev control plane, for its socket's clients), and no other.
func TestHostGateway(t *testing.T) {
	ln, err := gonet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("from-host\n"))
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*gonet.TCPAddr).Port)
	closed, err := gonet.Listen("tcp", "127.0.0.1:0") // listening, but not exposed
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()
	other := strconv.Itoa(closed.Addr().(*gonet.TCPAddr).Port)
	s := otherStack(t, []string{"--expose-host-port", port}, nil, func(s *stack) { s.fwArgs = []string{"--expose-host-port", port} })
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			read := func(p string) result {
				return docker(t, h.host, "run", "--rm", "--add-host", "host.docker.internal:host-gateway", "busybox", "sh", "-c",
					"grep host.docker.internal /etc/hosts && nc -w 3 host.docker.internal "+p+" </dev/null")
			}
			r := read(port)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "127.17.0.1\thost.docker.internal\n") || !strings.HasSuffix(r.stdout, "from-host\n") {
				t.Fatalf("host-gateway to an exposed port: exit %d %q %s", r.code, r.stdout, r.stderr)
			}
			if r := read(other); strings.Contains(r.stdout, "from-host") || r.code == 0 {
				t.Fatalf("a port not exposed was reached: exit %d %q", r.code, r.stdout)
			}
		})
	}
}
