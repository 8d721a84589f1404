package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/testnet"
)

// Published ports (docker run -p, -P): every scenario runs directly on the
// --dev socket (the control plane binds the ports), through the forwarder
// (the forwarder binds them) and, where it answers, on the machine's Docker
// engine; what the user sees is compared. Host ports always differ from
// container ports. Container ports are free ports of this machine too:
// gcpsim's instances may share its network (until each has its own), and
// other tests' containers listen meanwhile.

// unique makes names that do not collide with other users of the Docker
// engine on this machine.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, os.Getpid()) }

// ports returns n distinct free ports of this machine, as text.
func ports(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

var (
	nettestOnce sync.Once
	nettestErr  error
)

// portHosts are the hosts of the published-port scenarios: direct,
// forwarder and the Docker engine (with the nettest image loaded) when it
// answers.
func portHosts(t *testing.T, s *stack) []struct{ name, host string } {
	hosts := s.hosts()
	ref, ok := reference(t)
	if !ok {
		return hosts
	}
	nettestOnce.Do(func() { nettestErr = loadNettest(s.bin, ref) })
	if nettestErr != nil {
		t.Logf("no comparison with the Docker engine: %v", nettestErr)
		return hosts
	}
	return append(hosts, struct{ name, host string }{"docker", ref})
}

// loadNettest loads the nettest image into the Docker engine at host.
func loadNettest(bin, host string) error {
	img, err := nettestImage(bin)
	if err != nil {
		return err
	}
	return loadImage(host, "nettest:latest", img)
}

// get fetches url once.
func get(url string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// waitGet polls url until its body contains want.
func waitGet(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		body, err := get(url)
		if err == nil && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %q, %v; want %q", url, body, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitRefused polls addr until nothing accepts there.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// hostPortOf returns the host port `docker port` shows for private on ip.
func hostPortOf(t *testing.T, host, ctr, private, ip string) string {
	t.Helper()
	for _, l := range strings.Split(mustDocker(t, host, "port", ctr, private), "\n") {
		if h, p, err := net.SplitHostPort(strings.TrimSpace(l)); err == nil && h == ip {
			return p
		}
	}
	t.Fatalf("docker port %s %s shows no binding on %s", ctr, private, ip)
	return ""
}

// normalizePorts replaces the host ports in s by names.
func normalizePorts(s string, names map[string]string) string {
	for port, n := range names {
		s = regexp.MustCompile(`\b`+port+`\b`).ReplaceAllString(s, n)
	}
	return s
}

func inspectJSON(t *testing.T, host, ctr, format string) string {
	t.Helper()
	return strings.TrimSpace(mustDocker(t, host, "inspect", "--format", format, ctr))
}

func TestPublishedPortsReachTheContainer(t *testing.T) {
	s := requireStack(t)
	seen := map[string][]string{} // what each host showed, normalized
	for _, h := range portHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			ctr := unique("pub-" + h.name)
			pp := ports(t, 4)
			p, c1, c2, c3 := pp[0], pp[1], pp[2], pp[3]
			docker(t, h.host, "rm", "-f", ctr)
			defer docker(t, h.host, "rm", "-f", ctr)
			mustDocker(t, h.host, "run", "-d", "--name", ctr, "-p", p+":"+c1, "-p", "127.0.0.1::"+c2, "--expose", c3,
				"busybox", "sh", "-c", "httpd -p "+c2+" -h /etc; exec httpd -f -p "+c1+" -h /etc")
			waitGet(t, "http://127.0.0.1:"+p+"/passwd", "root:x:0:0")
			waitGet(t, "http://[::1]:"+p+"/passwd", "root:x:0:0")
			eph := hostPortOf(t, h.host, ctr, c2, "127.0.0.1")
			if eph == p || eph == c2 {
				t.Fatalf("ephemeral port %s", eph)
			}
			waitGet(t, "http://127.0.0.1:"+eph+"/group", "root:x:0:")
			names := map[string]string{p: "FIXED", eph: "EPHEMERAL", c1: "C1", c2: "C2", c3: "C3"}
			shown := []string{
				normalizePorts(mustDocker(t, h.host, "port", ctr), names),
				normalizePorts(inspectJSON(t, h.host, ctr, "{{json .NetworkSettings.Ports}}"), names),
				normalizePorts(inspectJSON(t, h.host, ctr, "{{json .HostConfig.PortBindings}}"), names),
				normalizePorts(mustDocker(t, h.host, "ps", "--filter", "name="+ctr, "--format", "{{.Ports}}"), names),
			}
			want := []string{
				"C1/tcp -> 0.0.0.0:FIXED\nC1/tcp -> [::]:FIXED\nC2/tcp -> 127.0.0.1:EPHEMERAL\n",
				`{"C1/tcp":[{"HostIp":"0.0.0.0","HostPort":"FIXED"},{"HostIp":"::","HostPort":"FIXED"}],"C2/tcp":[{"HostIp":"127.0.0.1","HostPort":"EPHEMERAL"}],"C3/tcp":null}`,
				`{"C1/tcp":[{"HostIp":"","HostPort":"FIXED"}],"C2/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]}`,
				"C3/tcp, 0.0.0.0:FIXED->C1/tcp, [::]:FIXED->C1/tcp, 127.0.0.1:EPHEMERAL->C2/tcp\n",
			}
			for i := range want {
				if !samePorts(shown[i], want[i]) {
					t.Errorf("shown\n%s\nwant\n%s", shown[i], want[i])
				}
			}
			seen[h.name] = shown

			t.Run("stop releases the ports", func(t *testing.T) {
				mustDocker(t, h.host, "stop", "-t", "1", ctr)
				waitRefused(t, "127.0.0.1:"+p)
				waitRefused(t, "127.0.0.1:"+eph)
				if got := inspectJSON(t, h.host, ctr, "{{json .NetworkSettings.Ports}}"); got != "{}" {
					t.Fatalf("ports of a stopped container: %s, want {}", got)
				}
			})
			t.Run("start binds them again", func(t *testing.T) {
				mustDocker(t, h.host, "start", ctr)
				waitGet(t, "http://127.0.0.1:"+p+"/passwd", "root:x:0:0")
				waitGet(t, "http://127.0.0.1:"+hostPortOf(t, h.host, ctr, c2, "127.0.0.1")+"/group", "root:x:0:")
			})
		})
	}
	if ref, ok := seen["docker"]; ok {
		for name, got := range seen {
			for i := range got {
				if !samePorts(got[i], ref[i]) {
					t.Errorf("%s shows %q where the Docker engine shows %q", name, got[i], ref[i])
				}
			}
		}
	}
}

// samePorts compares what two hosts show of ports after normalizing:
// maps and lists whose order follows the port numbers (which the
// normalized names hide) are compared without their order.
func samePorts(a, b string) bool {
	var ma, mb map[string]any
	if json.Unmarshal([]byte(a), &ma) == nil && json.Unmarshal([]byte(b), &mb) == nil {
		return reflect.DeepEqual(ma, mb)
	}
	set := func(s string) string {
		f := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '\n' })
		if len(f) == 1 {
			f = strings.Split(f[0], ", ")
		}
		sort.Strings(f)
		return strings.Join(f, "|")
	}
	return set(a) == set(b)
}

func TestPublishAllPortsGetsFreeHostPorts(t *testing.T) {
	s := requireStack(t)
	for _, h := range portHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			ctr := unique("pub-all-" + h.name)
			docker(t, h.host, "rm", "-f", ctr)
			defer docker(t, h.host, "rm", "-f", ctr)
			c := ports(t, 1)[0]
			mustDocker(t, h.host, "run", "-d", "--name", ctr, "-P", "--expose", c, "busybox", "httpd", "-f", "-p", c, "-h", "/etc")
			p4 := hostPortOf(t, h.host, ctr, c, "0.0.0.0")
			p6 := hostPortOf(t, h.host, ctr, c, "::")
			// Sockerless binds one port for both families; the Docker
			// engine picks each family's port on its own, which now and
			// then differ (seen here: 32785 and 32784).
			if p4 != p6 && h.name != "docker" || p4 == c || p6 == "" {
				t.Fatalf("-P bound %s and %s", p4, p6)
			}
			if n, _ := strconv.Atoi(p4); n < 1024 {
				t.Fatalf("-P chose port %d, want one of the ephemeral range", n)
			}
			waitGet(t, "http://127.0.0.1:"+p4+"/passwd", "root:x:0:0")
			if got := inspectJSON(t, h.host, ctr, "{{json .HostConfig.PortBindings}} {{.HostConfig.PublishAllPorts}}"); got != "{} true" {
				t.Fatalf("PortBindings, PublishAllPorts: %s, want {} true", got)
			}
		})
	}
}

// endpointID hides the endpoint ID in Docker's message.
var endpointID = regexp.MustCompile(`\([0-9a-f]{64}\)`)

func TestPublishedPortAlreadyTakenFailsTheStart(t *testing.T) {
	s := requireStack(t)
	taken, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	p := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	seen := map[string]string{}
	for _, h := range portHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			ctr := unique("pub-taken-" + h.name)
			docker(t, h.host, "rm", "-f", ctr)
			defer docker(t, h.host, "rm", "-f", ctr)
			r := docker(t, h.host, "run", "-d", "--name", ctr, "-p", p+":"+ports(t, 1)[0], "busybox", "sleep", "100")
			msg := endpointID.ReplaceAllString(strings.TrimSpace(r.stderr), "(ID)")
			msg = strings.ReplaceAll(msg, ctr, "NAME")
			want := "docker: Error response from daemon: driver failed programming external connectivity on endpoint NAME (ID): Error starting userland proxy: listen tcp4 0.0.0.0:" + p + ": bind: address already in use"
			if r.code != 125 || !strings.HasPrefix(msg, want) {
				t.Fatalf("exit %d\n%s\nwant 125 and\n%s", r.code, msg, want)
			}
			state := endpointID.ReplaceAllString(inspectJSON(t, h.host, ctr, "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}"), "(ID)")
			seen[h.name] = strings.ReplaceAll(state, ctr, "NAME")
			if !strings.HasPrefix(seen[h.name], "created 128 driver failed programming external connectivity") {
				t.Fatalf("state after the failed start: %s", seen[h.name])
			}
		})
	}
	for name, got := range seen {
		if ref, ok := seen["docker"]; ok && got != ref {
			t.Errorf("%s: %q, the Docker engine: %q", name, got, ref)
		}
	}
}

// TestPublishedUDPPort: -p HOST:5300/udp carries datagrams both ways
// between the client's machine and the container, one flow per client
// address, as under Docker; SCTP is refused at create.
func TestPublishedUDPPort(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			name := unique("pub-udp-" + h.name)
			t.Cleanup(func() { docker(t, h.host, "rm", "-f", name) })
			hp, err := freeUDPPort()
			if err != nil {
				t.Fatal(err)
			}
			if h.name == "docker" {
				img, err := nettestImage(s.bin)
				if err == nil {
					err = loadImage(h.host, "nettest:latest", img)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			// netserver answers each datagram upper-cased (Debian's
			// busybox nc has no -u).
			mustDocker(t, h.host, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:5300/udp", hp), "nettest", "netserver", "5300")
			if got := strings.TrimSpace(mustDocker(t, h.host, "port", name, "5300/udp")); got != fmt.Sprintf("127.0.0.1:%d", hp) {
				t.Fatalf("docker port 5300/udp = %q", got)
			}
			c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", hp))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 100)
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; ; i++ {
				// Datagrams before the server listens are lost: send again.
				if _, err := fmt.Fprintf(c, "hello %d\n", i); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				n, err := c.Read(buf)
				if err == nil {
					if got := string(buf[:n]); !strings.HasPrefix(got, "HELLO ") {
						t.Fatalf("answer %q", got)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no answer over UDP: %v; container: %s %s", err, docker(t, h.host, "ps", "-a", "--filter", "name="+name).stdout, docker(t, h.host, "logs", name).stderr)
				}
			}
			// The flow goes on: a second datagram, a second answer.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, err := fmt.Fprintf(c, "again\n"); err != nil {
					t.Fatal(err)
				}
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("second answer: %v", err)
				}
				if string(buf[:n]) == "AGAIN\n" {
					break
				}
			}
			if h.name != "docker" {
				r := docker(t, h.host, "create", "-p", "5353:53/sctp", "busybox")
				if r.code == 0 || !strings.Contains(r.stderr, "published port 53/sctp: only TCP and UDP ports can be published") {
					t.Fatalf("SCTP: exit %d: %s", r.code, r.stderr)
				}
			}
		})
	}
}

// freeUDPPort returns a UDP port free on 127.0.0.1 a moment ago.
func freeUDPPort() (int, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

func TestPublishedPortsNeedTheForwarder(t *testing.T) {
	s := requireStack(t)
	body := `{"Image":"busybox","ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"18080"}]}}}`
	resp, b := s.apiRequest(t, "POST", "/containers/create", []byte(body), true)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "need the Sockerless forwarder") {
		t.Fatalf("create with -p over plain TCP: %d %s", resp.StatusCode, b)
	}
}

// TestConnectionToAPortNobodyListensOnIsClosed: as Docker's userland proxy,
// the connection is accepted and closed at once; curl sees an empty reply
// (52) or, having sent its request already, a reset (56), as on the
// Docker engine.
func TestConnectionToAPortNobodyListensOnIsClosed(t *testing.T) {
	s := requireStack(t)
	for _, h := range portHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			ctr := unique("pub-none-" + h.name)
			pp := ports(t, 2)
			p := pp[0]
			docker(t, h.host, "rm", "-f", ctr)
			defer docker(t, h.host, "rm", "-f", ctr)
			mustDocker(t, h.host, "run", "-d", "--name", ctr, "-p", p+":"+pp[1], "busybox", "sleep", "300")
			out, err := exec.Command("curl", "-sS", "--max-time", "20", "http://127.0.0.1:"+p+"/").CombinedOutput()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != 56 && code != 52 {
				t.Fatalf("curl exit %d (%s), want 52 or 56 (closed at once)", code, out)
			}
		})
	}
}

// netConn opens a connection to the nettest server at addr in mode.
func netConn(t *testing.T, addr string, mode byte) *net.TCPConn {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			if _, err = c.Write([]byte{mode}); err == nil {
				return c.(*net.TCPConn)
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect %s: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runNettest starts netserver in a container publishing its port on a
// free port and returns the container and the address.
func runNettest(t *testing.T, host, prefix string) (string, string) {
	t.Helper()
	ctr := unique(prefix)
	pp := ports(t, 2)
	docker(t, host, "rm", "-f", ctr)
	t.Cleanup(func() { docker(t, host, "rm", "-f", ctr) })
	mustDocker(t, host, "run", "-d", "--name", ctr, "-p", pp[0]+":"+pp[1], "nettest", "netserver", pp[1])
	waitFor(t, func() bool { return strings.Contains(docker(t, host, "logs", ctr).stdout, "listening") })
	addr := "127.0.0.1:" + pp[0]
	// The first connection may race the listener being carried.
	c := netConn(t, addr, 'p')
	c.Write([]byte{1})
	io.ReadFull(c, make([]byte, 1))
	c.Close()
	return ctr, addr
}

func TestPublishedPortStreams(t *testing.T) {
	s := requireStack(t)
	for _, h := range portHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			ctr, addr := runNettest(t, h.host, "pub-stream-"+h.name)

			t.Run("the client's half-close reaches the server, which still answers", func(t *testing.T) {
				c := netConn(t, addr, 's')
				defer c.Close()
				c.Write(make([]byte, 5<<20))
				c.CloseWrite()
				b, err := io.ReadAll(c)
				if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(5<<20) {
					t.Fatalf("sink answered %q, %v", b, err)
				}
			})
			t.Run("the server's half-close reaches the client, which still sends", func(t *testing.T) {
				c := netConn(t, addr, 'h')
				defer c.Close()
				b, err := io.ReadAll(c)
				if err != nil || string(b) != "bye\n" {
					t.Fatalf("read %q, %v", b, err)
				}
				if _, err := c.Write(make([]byte, 3<<20)); err != nil {
					t.Fatalf("write after the server's half-close: %v", err)
				}
				c.CloseWrite()
				waitFor(t, func() bool {
					return strings.Contains(docker(t, h.host, "logs", ctr).stdout, fmt.Sprintf("got %d", 3<<20))
				})
			})
			t.Run("100 parallel connections each get their own bytes", func(t *testing.T) {
				testnet.Parallel(t, 100, func(i int) error {
					c, err := net.DialTimeout("tcp", addr, 10*time.Second)
					if err != nil {
						return err
					}
					defer c.Close()
					msg := strings.Repeat(fmt.Sprintf("%03d", i), 20_000)
					go func() {
						c.Write([]byte("e" + msg))
						c.(*net.TCPConn).CloseWrite()
					}()
					c.SetReadDeadline(time.Now().Add(2 * time.Minute))
					got, err := io.ReadAll(c)
					if err != nil || string(got) != msg {
						return fmt.Errorf("%d bytes back, %v", len(got), err)
					}
					return nil
				})
			})
			t.Run("a stalled reader loses nothing", func(t *testing.T) {
				const size = 64 << 20
				c := netConn(t, addr, 'g')
				defer c.Close()
				fmt.Fprintf(c, "%d\n", size)
				time.Sleep(3 * time.Second) // the server writes; nobody reads
				n, err := io.Copy(io.Discard, c)
				if err != nil || n != size {
					t.Fatalf("read %d, %v; want %d", n, err, size)
				}
			})
		})
	}
}

// TestStalledReaderBoundsMemory: a client that does not read a container's
// output holds back the container, not the memory of the processes between
// them.
func TestStalledReaderBoundsMemory(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			_, addr := runNettest(t, h.host, "pub-stall-"+h.name)
			cpBefore, fwBefore := rss(t, s.cp.cmd.Process.Pid), rss(t, s.fw.cmd.Process.Pid)
			const size = 256 << 20
			var conns []*net.TCPConn
			for i := 0; i < 4; i++ {
				c := netConn(t, addr, 'g')
				defer c.Close()
				fmt.Fprintf(c, "%d\n", size)
				conns = append(conns, c)
			}
			time.Sleep(5 * time.Second)
			cpGrowth, fwGrowth := rss(t, s.cp.cmd.Process.Pid)-cpBefore, rss(t, s.fw.cmd.Process.Pid)-fwBefore
			t.Logf("while 4 readers stalled on 256 MiB each: control plane +%d MiB, forwarder +%d MiB", cpGrowth>>20, fwGrowth>>20)
			if cpGrowth > 64<<20 || fwGrowth > 64<<20 {
				t.Errorf("memory grew by %d MiB (control plane) and %d MiB (forwarder) for stalled readers", cpGrowth>>20, fwGrowth>>20)
			}
			for _, c := range conns {
				if n, err := io.Copy(io.Discard, c); err != nil || n != size {
					t.Fatalf("read %d, %v; want %d", n, err, size)
				}
			}
		})
	}
}

// TestPublishedPortsAcrossControlPlaneRestart: after a restart of the
// control plane an open connection ends (the client sees it end) and a new
// one works, without user action, directly and through the forwarder.
func TestPublishedPortsAcrossControlPlaneRestart(t *testing.T) {
	s := otherStack(t, nil, nil)
	addrs := map[string]string{}
	conns := map[string]*net.TCPConn{}
	for _, h := range s.hosts() {
		_, addr := runNettest(t, h.host, "pub-restart-"+h.name)
		c := netConn(t, addr, 'p')
		defer c.Close()
		c.Write([]byte{7})
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		addrs[h.name], conns[h.name] = addr, c
	}
	s.cp.stop()
	if err := s.startControlPlane(); err != nil {
		t.Fatal(err)
	}
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			c := conns[h.name]
			c.SetDeadline(time.Now().Add(60 * time.Second))
			c.Write([]byte{8})
			if _, err := io.ReadFull(c, make([]byte, 1)); err == nil {
				t.Fatal("a connection open across the restart still carries bytes")
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the connection open across the restart did not end")
			}
			n := netConn(t, addrs[h.name], 'p')
			defer n.Close()
			n.SetDeadline(time.Now().Add(30 * time.Second))
			n.Write([]byte{9})
			b := make([]byte, 1)
			if _, err := io.ReadFull(n, b); err != nil || b[0] != 9 {
				t.Fatalf("a new connection after the restart: %v %v", b, err)
			}
		})
	}
}

// The Python SDK publishes with ports={'80/tcp': None} and reads
// container.ports.
const sdkPortsScript = `
import docker, sys, urllib.request, time
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
cport = sys.argv[2]
ct = c.containers.run("busybox", ["httpd", "-f", "-p", cport, "-h", "/etc"], detach=True, ports={cport + "/tcp": None})
try:
    ct.reload()
    b = ct.ports[cport + "/tcp"]
    assert {x["HostIp"] for x in b} == {"0.0.0.0", "::"}, b
    port = b[0]["HostPort"]
    assert port != cport, b
    for i in range(100):
        try:
            body = urllib.request.urlopen("http://127.0.0.1:%s/passwd" % port, timeout=10).read()
            break
        except Exception as e:
            time.sleep(0.2)
    assert b"root:x:0:0" in body, body
finally:
    ct.remove(force=True)
print("sdk ports ok")
`

func TestPythonSDKPublishesPorts(t *testing.T) {
	s := requireStack(t)
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed (pip install docker)")
	}
	script := filepath.Join(t.TempDir(), "ports.py")
	if err := os.WriteFile(script, []byte(sdkPortsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range portHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			out, err := exec.Command("python3", script, h.host, ports(t, 1)[0]).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "sdk ports ok") {
				t.Fatalf("python SDK: %v\n%s", err, out)
			}
		})
	}
}

// TestRestartPolicyBindsThePortsAgain: a container the restart policy
// brings back serves its published port again (ports are released at each
// exit and bound at each start).
func TestRestartPolicyBindsThePortsAgain(t *testing.T) {
	s := requireStack(t)
	for _, h := range portHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			ctr := unique("pub-policy-" + h.name)
			pp := ports(t, 2)
			docker(t, h.host, "rm", "-f", ctr)
			defer docker(t, h.host, "rm", "-f", ctr)
			mustDocker(t, h.host, "run", "-d", "--name", ctr, "--restart", "on-failure:5", "-p", pp[0]+":"+pp[1],
				"nettest", "sh", "-c", "netserver "+pp[1]+" & sleep 4; exit 3")
			deadline := time.Now().Add(90 * time.Second)
			for {
				n, _ := strconv.Atoi(inspectJSON(t, h.host, ctr, "{{.RestartCount}}"))
				if n >= 1 && ping(addrOf(pp[0])) == nil {
					return // served again after a restart
				}
				if time.Now().After(deadline) {
					t.Fatalf("not served after %d restarts", n)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}

func addrOf(port string) string { return "127.0.0.1:" + port }

// ping makes one round trip with the nettest server at addr.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{'p', 1}); err != nil {
		return err
	}
	_, err = io.ReadFull(c, make([]byte, 1))
	return err
}

// TestContainerToContainerUDP: on a user network a container reaches a
// peer's declared UDP port (--expose 5300/udp) by name, and a container on
// another network does not.
func TestContainerToContainerUDP(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			if h.name == "docker" {
				img, err := nettestImage(s.bin)
				if err == nil {
					err = loadImage(h.host, "nettest:latest", img)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			net, other, srv := "udpnet-"+h.name+runID, "udpother-"+h.name+runID, "udpsrv-"+h.name+runID
			t.Cleanup(func() {
				docker(t, h.host, "rm", "-f", srv)
				docker(t, h.host, "network", "rm", net, other)
			})
			mustDocker(t, h.host, "network", "create", net)
			mustDocker(t, h.host, "network", "create", other)
			mustDocker(t, h.host, "run", "-d", "--name", srv, "--network", net, "--expose", "5300/udp", "nettest", "netserver", "5300")
			out := mustDocker(t, h.host, "run", "--rm", "--network", net, "nettest", "netclient", "udp", srv+":5300", "100")
			if got := strings.TrimSpace(out); got != "HELLO" {
				t.Fatalf("answer %q", got)
			}
			ip := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+net+"\").IPAddress}}", srv))
			if r := docker(t, h.host, "run", "--rm", "--network", other, "nettest", "netclient", "udp", ip+":5300", "10"); r.code == 0 {
				t.Fatalf("reached from another network: %s", r.stdout)
			}
		})
	}
}
