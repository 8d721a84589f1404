package netview

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// dnsTTL is the TTL of the answers about containers, docker's.
const dnsTTL = 600

// dnsServer is the embedded DNS server: it answers the names of the
// view (A; an empty answer for other types of a known name; PTR for their
// addresses) and forwards every other question to the upstream
// resolvers, as docker's does.
type dnsServer struct {
	log      *slog.Logger
	udp, tcp *dns.Server

	mu        sync.RWMutex
	names     map[string][]net.IP // lower-case name without the trailing dot
	reverse   map[string]string   // in-addr.arpa name → the first name of the address
	upstreams []string            // host:port
}

// startDNS listens on addr over UDP and TCP.
func startDNS(addr string, log *slog.Logger) (*dnsServer, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	d := &dnsServer{log: log}
	d.udp = &dns.Server{PacketConn: pc, Handler: d}
	d.tcp = &dns.Server{Listener: ln, Handler: d}
	for _, s := range []*dns.Server{d.udp, d.tcp} {
		go func() {
			if err := s.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				log.Debug("dns server ended", "err", err)
			}
		}()
	}
	return d, nil
}

// set replaces the names and the upstream resolvers.
func (d *dnsServer) set(names map[string][]string, upstreams []string) {
	m := make(map[string][]net.IP, len(names))
	rev := map[string]string{}
	for n, ips := range names {
		k := strings.ToLower(strings.TrimSuffix(n, "."))
		for _, s := range ips {
			ip := net.ParseIP(s)
			if ip == nil || ip.To4() == nil {
				continue
			}
			m[k] = append(m[k], ip.To4())
			if r, err := dns.ReverseAddr(s); err == nil {
				if old, ok := rev[r]; !ok || len(k) < len(old) || len(k) == len(old) && k < old {
					rev[r] = k // the shortest name: the container's, not name.network
				}
			}
		}
	}
	d.mu.Lock()
	d.names, d.reverse, d.upstreams = m, rev, upstreams
	d.mu.Unlock()
}

func (d *dnsServer) close() {
	_ = d.udp.Shutdown()
	_ = d.tcp.Shutdown()
}

// ServeDNS answers one query.
func (d *dnsServer) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 || q.Opcode != dns.OpcodeQuery {
		reply := new(dns.Msg)
		reply.SetRcode(q, dns.RcodeNotImplemented)
		_ = w.WriteMsg(reply)
		return
	}
	question := q.Question[0]
	name := strings.ToLower(strings.TrimSuffix(question.Name, "."))
	d.mu.RLock()
	ips, known := d.names[name]
	ptr, isPTR := d.reverse[strings.ToLower(question.Name)]
	upstreams := d.upstreams
	d.mu.RUnlock()
	if question.Qclass == dns.ClassINET && (known || isPTR && question.Qtype == dns.TypePTR) {
		reply := new(dns.Msg)
		reply.SetReply(q)
		reply.Authoritative = true
		reply.RecursionAvailable = true
		hdr := dns.RR_Header{Name: question.Name, Class: dns.ClassINET, Ttl: dnsTTL}
		switch {
		case question.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			for _, ip := range ips {
				reply.Answer = append(reply.Answer, &dns.A{Hdr: hdr, A: ip})
			}
		case question.Qtype == dns.TypePTR && isPTR:
			hdr.Rrtype = dns.TypePTR
			reply.Answer = append(reply.Answer, &dns.PTR{Hdr: hdr, Ptr: dns.Fqdn(ptr)})
		}
		// Other types of a known name: an empty answer, as docker's.
		_ = w.WriteMsg(reply)
		return
	}
	d.forward(w, q, upstreams)
}

// forward asks the upstream resolvers in turn and relays the first answer.
func (d *dnsServer) forward(w dns.ResponseWriter, q *dns.Msg, upstreams []string) {
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	for _, up := range upstreams {
		c := &dns.Client{Net: network, Timeout: 3 * time.Second}
		resp, _, err := c.Exchange(q, up) // a truncated answer is relayed: the client asks again over TCP
		if err != nil {
			d.log.Debug("dns forward failed", "upstream", up, "name", q.Question[0].Name, "err", err)
			continue
		}
		resp.Id = q.Id
		_ = w.WriteMsg(resp)
		return
	}
	reply := new(dns.Msg)
	reply.SetRcode(q, dns.RcodeServerFailure)
	reply.RecursionAvailable = true
	_ = w.WriteMsg(reply)
}
