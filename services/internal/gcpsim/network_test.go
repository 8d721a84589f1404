package gcpsim_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/sockerless/sockerless/services/internal/gcpsim"
)

// The network test image: httpd on $PORT, and a second httpd on :5432 in
// every instance that answers with the instance's hostname.
const netEntrypoint = `chmod +x /www/cgi-bin/*; mkdir -p /db; hostname > /db/index.html; ` +
	`httpd -f -p 5432 -h /db & echo $! > /tmp/db.pid; httpd -f -p "$PORT" -h /www & echo $! > /tmp/httpd.pid; wait`

var netCGI = map[string]string{
	// both: wait at the test's gate (a host port given to gcpsim), then
	// say who answers on :5432.
	"/www/cgi-bin/both": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n" +
		"gate=$(wget -qO- \"http://127.0.0.1:$GATE_PORT/gate\" 2>&1)\n" +
		"for i in $(seq 50); do db=$(wget -qO- http://127.0.0.1:5432/ 2>&1) && break; sleep 0.1; done\n" +
		"echo \"$(hostname) $db $gate\"\n",
	// other: a port of the host's loopback that was not given.
	"/www/cgi-bin/other": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n" +
		"wget -T 10 -qO- \"http://127.0.0.1:$OTHER_PORT/\" >/dev/null 2>&1; echo \"rc=$?\"\n",
	// etc: the original files, then rewritten in place and by rename.
	"/www/cgi-bin/etc": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n" +
		"cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---\n" +
		"echo '127.0.0.9 added.example' >> /etc/hosts && grep added.example /etc/hosts\n" +
		"echo 'nameserver 127.0.0.11' > /tmp/r && mv /tmp/r /etc/resolv.conf && cat /etc/resolv.conf\n",
	"/www/cgi-bin/dns":   "#!/bin/sh\necho 'Content-Type: text/plain'\necho\nnslookup probe.example.test 2>&1\n",
	"/www/cgi-bin/route": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\ncat /proc/net/route\n",
	"/www/cgi-bin/exit": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho bye\n" +
		"(sleep 0.3; kill $(cat /tmp/httpd.pid) $(cat /tmp/db.pid)) >/dev/null 2>&1 </dev/null &\n",
}

// testResolver is a loopback address of the host where the test serves
// DNS, as systemd-resolved serves at 127.0.0.53.
var testResolver = netip.MustParseAddr("127.0.0.78") // instnet's tests serve on .77

func TestInstanceNetworks(t *testing.T) {
	needRunc(t)
	gate := newGate(2)
	gateSrv := &http.Server{Handler: gate}
	gateLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gateSrv.Serve(gateLn)
	t.Cleanup(func() { gate.open(); gateSrv.Close() })
	otherLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer otherLn.Close()
	go http.Serve(otherLn, http.NotFoundHandler())

	dnsOK := serveDNS(t)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	resolvConf := "nameserver " + testResolver.String() + "\nsearch example.test\n"
	if err := os.WriteFile(resolv, []byte(resolvConf), 0o644); err != nil {
		t.Fatal(err)
	}
	gatePort := gateLn.Addr().(*net.TCPAddr).Port
	srv := startSim(t, gcpsim.Config{
		StopGrace: time.Second, HostPorts: []int{gatePort}, ResolvConf: resolv, Logger: testLogger(t),
	})
	_, rc := clients(t, srv)
	ref := pushImage(t, srv, "net:1", netEntrypoint, netCGI)
	svc := createService(t, rc, "net", ref, time.Minute, 2,
		"GATE_PORT="+strconv.Itoa(gatePort), "OTHER_PORT="+strconv.Itoa(otherLn.Addr().(*net.TCPAddr).Port))
	url := svc.GetUri()

	t.Run("two instances both listen on :5432 and reach a host port given", func(t *testing.T) {
		var wg sync.WaitGroup
		answers := make([]string, 2)
		for k := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body := get(t, url+"/cgi-bin/both")
				answers[k] = fmt.Sprintf("%d %s", code, body)
			}()
		}
		wg.Wait()
		var hosts []string
		for _, a := range answers {
			f := strings.Fields(a)
			// "200 HOSTNAME HOSTNAME-ON-5432 gate-open": its own :5432.
			if len(f) != 4 || f[0] != "200" || f[1] != f[2] || f[3] != "gate-open" {
				t.Fatalf("answer %q: want the instance's own :5432 and the host's gate", a)
			}
			hosts = append(hosts, f[1])
		}
		if hosts[0] == hosts[1] {
			t.Errorf("both requests on instance %s, want two instances", hosts[0])
		}
	})

	t.Run("other ports of the host's loopback are not reachable", func(t *testing.T) {
		if code, body := get(t, url+"/cgi-bin/other"); code != 200 || body == "rc=0" || !strings.HasPrefix(body, "rc=") {
			t.Errorf("other = %d %q, want a failed connection", code, body)
		}
	})

	t.Run("the host's loopback resolver answers inside", func(t *testing.T) {
		if !dnsOK {
			t.Skipf("cannot serve DNS on %s:53 on this host", testResolver)
		}
		if code, body := get(t, url+"/cgi-bin/dns"); code != 200 || !strings.Contains(body, "127.0.0.42") {
			t.Errorf("nslookup = %d %q, want the test resolver's answer 127.0.0.42", code, body)
		}
	})

	t.Run("resolv.conf and hosts are the instance's own writable files", func(t *testing.T) {
		code, body := get(t, url+"/cgi-bin/etc")
		parts := strings.Split(body, "---\n")
		if code != 200 || len(parts) != 3 {
			t.Fatalf("etc = %d %q", code, body)
		}
		if parts[0] != resolvConf {
			t.Errorf("resolv.conf = %q, want the host's %q", parts[0], resolvConf)
		}
		if !strings.HasPrefix(parts[1], "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n") {
			t.Errorf("hosts = %q, want docker's localhost lines", parts[1])
		}
		if want := "127.0.0.9 added.example\nnameserver 127.0.0.11"; parts[2] != want {
			t.Errorf("after rewriting: %q, want %q", parts[2], want)
		}
	})

	t.Run("pasta gives internet egress", func(t *testing.T) {
		if _, err := exec.LookPath("pasta"); err != nil {
			t.Skip("needs pasta (apt-get install passt)")
		}
		code, body := get(t, url+"/cgi-bin/route")
		if code != 200 || !hasDefaultRoute(body) {
			t.Errorf("routes = %d %q, want a default route", code, body)
		}
	})

	t.Run("the namespace goes with the instance; one pasta serves all", func(t *testing.T) {
		inst := srv.Instances()
		if len(inst) == 0 || inst[0].Netns == "" {
			t.Fatalf("instances %+v, want a listening one with its namespace", inst)
		}
		if len(inst) != 2 {
			t.Fatalf("want both instances, have %+v", inst)
		}
		if _, err := exec.LookPath("pasta"); err == nil {
			if egressOf(inst[0].Netns) != egressOf(inst[1].Netns) || pastaOf(egressOf(inst[0].Netns)) == 0 {
				t.Errorf("instances %+v do not share one egress namespace with its pasta", inst)
			}
		}
		for n := len(inst); n > 0; n-- {
			get(t, url+"/cgi-bin/exit")
			waitFor(t, "an instance to end", func() bool { return len(srv.Instances()) < n })
		}
		for _, in := range inst {
			// Its file goes only once unbound (a mount point cannot be removed).
			if _, err := os.Stat(in.Netns); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("namespace file %s: %v, want it unbound and gone", in.Netns, err)
			}
		}
	})
}

func TestNoInternetGivesNoRoute(t *testing.T) {
	needRunc(t)
	srv := startSim(t, gcpsim.Config{StopGrace: time.Second, NoInternet: true, Logger: testLogger(t)})
	_, rc := clients(t, srv)
	svc := createService(t, rc, "offline", pushImage(t, srv, "net:1", netEntrypoint, netCGI), time.Minute, 1)
	if code, body := get(t, svc.GetUri()+"/cgi-bin/route"); code != 200 || hasDefaultRoute(body) {
		t.Errorf("routes = %d %q, want none (no internet egress)", code, body)
	}
}

func TestLeftoverNetworksAreRemoved(t *testing.T) {
	needRunc(t)
	state := t.TempDir()
	crashed := startSim(t, gcpsim.Config{StateDir: state, StopGrace: time.Second, Logger: testLogger(t)})
	_, rc := clients(t, crashed)
	svc := createService(t, rc, "left", pushImage(t, crashed, "net:1", netEntrypoint, netCGI), time.Minute, 1)
	if code, _ := get(t, svc.GetUri()+"/cgi-bin/route"); code != 200 {
		t.Fatalf("GET = %d", code)
	}
	inst := crashed.Instances()
	if len(inst) != 1 {
		t.Fatalf("instances %+v", inst)
	}
	nsPath := inst[0].Netns
	pasta := pastaOf(egressOf(nsPath))
	// A gcpsim starting on the state dir of one that did not clean up (as
	// after a crash) removes its containers, namespaces and pastas.
	startSim(t, gcpsim.Config{StateDir: state, Logger: testLogger(t)})
	if _, err := os.Stat(filepath.Dir(nsPath)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover network %s: %v, want its namespace unbound and gone", filepath.Dir(nsPath), err)
	}
	if _, err := exec.LookPath("pasta"); err == nil && pasta == 0 {
		t.Error("the instance's egress namespace had no pasta")
	}
	waitFor(t, "the leftover pasta to end", func() bool { return pastaOf(egressOf(nsPath)) == 0 })
	out, err := exec.Command("/usr/sbin/runc", "--root", state+"/run/runc", "list", "-q").Output()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("runc list after restart = %q, %v; want none", out, err)
	}
}

// gate answers /gate once n requests wait at it (or it is opened).
type gate struct {
	mu      sync.Mutex
	waiting int
	n       int
	opened  chan struct{}
	once    sync.Once
}

func newGate(n int) *gate { return &gate{n: n, opened: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.opened) }) }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.waiting++
	if g.waiting >= g.n {
		g.open()
	}
	g.mu.Unlock()
	select {
	case <-g.opened:
		io.WriteString(w, "gate-open")
	case <-time.After(2 * time.Minute):
		io.WriteString(w, "gate-timeout")
	case <-r.Context().Done():
	}
}

// serveDNS answers A queries for any name with 127.0.0.42 at
// testResolver:53 on the host, until the test ends; false if it cannot.
func serveDNS(t *testing.T) bool {
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(testResolver, 53).String())
	if err != nil {
		t.Logf("no test resolver: %v", err)
		return false
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var msg dnsmessage.Message
			if err := msg.Unpack(buf[:n]); err != nil || len(msg.Questions) != 1 {
				continue
			}
			q := msg.Questions[0]
			msg.Header.Response, msg.Header.Authoritative = true, true
			if q.Type == dnsmessage.TypeA {
				msg.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					Body:   &dnsmessage.AResource{A: [4]byte{127, 0, 0, 42}},
				}}
			}
			if out, err := msg.Pack(); err == nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return true
}

// hasDefaultRoute reports whether a /proc/net/route text has one.
func hasDefaultRoute(routes string) bool {
	for _, l := range strings.Split(routes, "\n") {
		if f := strings.Fields(l); len(f) > 7 && f[1] == "00000000" && f[7] == "00000000" {
			return true
		}
	}
	return false
}

// egressOf is the egress namespace that the instance namespace at nsPath
// (STATE_DIR/run/nets/net-HEX/netns) is linked to: its pool's.
func egressOf(nsPath string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(nsPath)), "egress", "netns")
}

// pastaOf returns the pid of a pasta serving the namespace at nsPath, or 0.
func pastaOf(nsPath string) int {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + p.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == "--netns" && i+1 < len(args) && args[i+1] == nsPath && strings.Contains(args[0], "pasta") {
				return pid
			}
		}
	}
	return 0
}
