package netview

import (
	"bufio"
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// startScan watches the ports the container's processes listen on until
// Close; the caller holds v.mu.
func (v *View) startScan() {
	if v.cfg.Listening == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.stopScan, v.scanDone = cancel, make(chan struct{})
	go func() {
		defer close(v.scanDone)
		var last []int
		first := true
		// Scans come ScanInterval apart after a change, further apart
		// (up to MaxScanInterval) while nothing changes: each wakes the
		// agent, and hundreds of idle instances' agents add up.
		interval := v.cfg.ScanInterval
		t := time.NewTimer(interval)
		defer t.Stop()
		for {
			v.mu.Lock()
			self := v.selfIPs
			v.mu.Unlock()
			ports, err := listeningPorts(v.cfg.Proc, self)
			if err != nil {
				v.log.Debug("scan listening ports", "err", err)
			} else if first || !slices.Equal(ports, last) {
				first, last = false, ports
				v.mu.Lock()
				v.own = map[int]bool{}
				for _, p := range ports {
					v.own[p] = true
				}
				v.setListeners()
				v.mu.Unlock()
				v.cfg.Listening(ports)
				interval = v.cfg.ScanInterval
			} else {
				interval = min(2*interval, v.cfg.MaxScanInterval)
			}
			t.Reset(interval)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// listeningPorts returns the TCP ports in LISTEN state of sockets that are
// not the agent's own, bound to a wildcard address or one of self. With
// proc "/proc" it asks the kernel through sock_diag (and reads
// /proc/net/tcp{,6} only if that fails); another proc (a test's) is read
// as files.
func listeningPorts(proc string, self map[string]bool) ([]int, error) {
	var socks []listenSock
	var err error
	if proc == "/proc" {
		socks, err = diagListeners()
	}
	if proc != "/proc" || err != nil {
		socks, err = procListeners(proc)
	}
	own := ownSockets(proc)
	set := map[int]bool{}
	for _, s := range socks {
		if own[s.inode] || !(s.ip.IsUnspecified() || self[s.ip.String()]) {
			continue
		}
		set[s.port] = true
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Ints(out)
	return out, err
}

// procListeners reads the listening sockets of proc/net/tcp and tcp6.
func procListeners(proc string) ([]listenSock, error) {
	var out []listenSock
	var firstErr error
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		socks, err := scanTCP(filepath.Join(proc, f))
		if err != nil && firstErr == nil && !os.IsNotExist(err) {
			firstErr = err
		}
		out = append(out, socks...)
	}
	return out, firstErr
}

// ownSockets are the socket inodes of the agent process itself (its
// listeners for peers, its DNS server, its invocation server).
func ownSockets(proc string) map[string]bool {
	out := map[string]bool{}
	dir := filepath.Join(proc, "self", "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

// tcpListen is the state number of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// scanTCP reads the listening sockets of a /proc/net/tcp{,6} file.
func scanTCP(path string) ([]listenSock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var out []listenSock
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		hostHex, portHex, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		ip := procIP(hostHex)
		if ip == nil {
			continue
		}
		out = append(out, listenSock{ip: ip, port: int(port), inode: fields[9]})
	}
	return out, sc.Err()
}

// procIP decodes an address of /proc/net/tcp{,6}: 32-bit words in host
// (little-endian) order.
func procIP(h string) net.IP {
	b, err := hex.DecodeString(h)
	if err != nil || len(b)%4 != 0 {
		return nil
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	ip := net.IP(b)
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}
