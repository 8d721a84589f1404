package netview

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sockerless/sockerless/agent/proto"
)

// freeUDP returns a 127.0.0.1 address whose port is free for UDP and TCP.
func freeUDP(t *testing.T) string {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

func replaceNameserver(s, addr string) string {
	host, _, _ := strings.Cut(addr, ":")
	return strings.Replace(s, "nameserver 127.0.0.11", "nameserver "+host, 1)
}

// query asks addr over net for name of type qtype.
func query(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

func aRecords(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// upstream serves a fake resolver: example.test has 192.0.2.7, every other
// name is NXDOMAIN.
func upstream(t *testing.T) string {
	t.Helper()
	addr := freeUDP(t)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(q)
		if q.Question[0].Name == "example.test." && q.Question[0].Qtype == dns.TypeA {
			r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP("192.0.2.7")})
		} else {
			r.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(r)
	})
	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr, Net: network, Handler: h}
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ListenAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return addr
}

func TestEmbeddedDNS(t *testing.T) {
	addr := freeUDP(t)
	v := New(Config{Root: t.TempDir(), DNSAddr: addr})
	defer v.Close()
	view := proto.NetworkView{DNS: true, Names: map[string][]string{
		"db":             {"127.18.0.2"},
		"database":       {"127.18.0.2"},
		"db.mynet":       {"127.18.0.2"},
		"3f2a1b0c9d8e":   {"127.18.0.2"},
		"multi":          {"127.18.0.2", "127.19.0.5"},
		"web":            {"127.18.0.3"},
		"not-an-address": {"x"},
	}}
	if err := v.Apply(t.Context(), view); err != nil {
		t.Fatal(err)
	}
	up := upstream(t)
	v.mu.Lock()
	v.dns.set(view.Names, []string{up}) // the fake resolver stands for the instance's
	v.mu.Unlock()
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			tests := []struct {
				name  string
				qtype uint16
				rcode int
				want  []string
			}{
				{"db", dns.TypeA, dns.RcodeSuccess, []string{"127.18.0.2"}},
				{"DataBase", dns.TypeA, dns.RcodeSuccess, []string{"127.18.0.2"}}, // names are case-insensitive
				{"db.mynet", dns.TypeA, dns.RcodeSuccess, []string{"127.18.0.2"}},
				{"3f2a1b0c9d8e", dns.TypeA, dns.RcodeSuccess, []string{"127.18.0.2"}},
				{"multi", dns.TypeA, dns.RcodeSuccess, []string{"127.18.0.2", "127.19.0.5"}},
				{"db", dns.TypeAAAA, dns.RcodeSuccess, nil}, // known name, no IPv6: empty answer
				{"example.test", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.7"}},
				{"nope.test", dns.TypeA, dns.RcodeNameError, nil}, // forwarded: the upstream's NXDOMAIN
			}
			for _, tt := range tests {
				r := query(t, network, addr, tt.name, tt.qtype)
				got := aRecords(r)
				if r.Rcode != tt.rcode || strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Errorf("%s %s = rcode %s answer %v, want %s %v", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tt.rcode], tt.want)
				}
			}
			r := query(t, network, addr, "2.0.18.127.in-addr.arpa", dns.TypePTR)
			if len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "db." && r.Answer[0].(*dns.PTR).Ptr != "3f2a1b0c9d8e." {
				t.Errorf("PTR of 127.18.0.2 = %v", r.Answer)
			}
		})
	}
	// A name that leaves the view stops resolving; names never learnt by
	// any resolver fail without an upstream.
	view.Names = map[string][]string{"web": {"127.18.0.3"}}
	if err := v.Apply(t.Context(), view); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	v.dns.set(view.Names, nil)
	v.mu.Unlock()
	if r := query(t, "udp", addr, "db", dns.TypeA); r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 0 {
		t.Errorf("db after it left = %s %v, want SERVFAIL without an upstream", dns.RcodeToString[r.Rcode], r.Answer)
	}
}

func TestNamesGoToHostsWithoutDNSServer(t *testing.T) {
	// Someone holds the DNS address: the names still resolve through
	// /etc/hosts.
	addr := freeUDP(t)
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	root := t.TempDir()
	v := New(Config{Root: root, DNSAddr: addr})
	defer v.Close()
	if err := v.Apply(t.Context(), proto.NetworkView{DNS: true, Names: map[string][]string{"db": {"127.18.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	got := string(hostsFile(proto.NetworkView{DNS: true, Names: map[string][]string{"db": {"127.18.0.2"}}}, true))
	if !strings.HasSuffix(got, "127.18.0.2\tdb\n") {
		t.Fatalf("hosts = %q", got)
	}
}
