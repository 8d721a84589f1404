package netview

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenSock is a TCP socket in LISTEN state: its local address and the
// inode that names it in /proc/PID/fd.
type listenSock struct {
	ip    net.IP
	port  int
	inode string
}

// Sizes of the sock_diag structures (linux/inet_diag.h): inet_diag_req_v2
// is family, protocol, ext, pad, states and a 48-byte inet_diag_sockid;
// inet_diag_msg is family, state, timer, retrans, the sockid, then
// expires, rqueue, wqueue, uid and inode.
const (
	diagReqLen   = 56
	diagMsgLen   = 72
	diagSockID   = 4  // offset of the sockid in inet_diag_msg
	diagInodeOff = 68 // offset of the inode in inet_diag_msg
)

// diagListeners asks the kernel (NETLINK_SOCK_DIAG) for the listening
// TCP sockets of the caller's network namespace, IPv4 and IPv6. Unlike a
// read of /proc/net/tcp, which walks the host's whole established-socket
// hash table (all namespaces share it: milliseconds of kernel time on a
// host with many sockets, 4 times a second in each of hundreds of
// instances), a dump filtered to LISTEN walks only the listening table.
func diagListeners() ([]listenSock, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	var out []listenSock
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := diagDump(fd, family)
		if err != nil {
			return nil, err
		}
		out = append(out, socks...)
	}
	return out, nil
}

// diagDump sends one dump request for family's listening TCP sockets on
// the netlink socket fd and reads the answer to its end.
func diagDump(fd int, family uint8) ([]listenSock, error) {
	req := make([]byte, unix.NLMSG_HDRLEN+diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], uint32(family)) // sequence number
	body := req[unix.NLMSG_HDRLEN:]
	body[0], body[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(body[4:], 1<<unix.BPF_TCP_LISTEN) // idiag_states
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag request: %w", err)
	}
	var out []listenSock
	buf := make([]byte, os.Getpagesize()*4)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, fmt.Errorf("sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag answer: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("sock_diag: %w", syscall.Errno(-errno))
					}
				}
				return out, nil
			case unix.SOCK_DIAG_BY_FAMILY:
				if s, ok := parseDiagMsg(m.Data); ok {
					out = append(out, s)
				}
			}
		}
	}
}

// parseDiagMsg decodes an inet_diag_msg: the sockid's source port is big
// endian, its source address is 4 (IPv4) or 16 bytes.
func parseDiagMsg(b []byte) (listenSock, bool) {
	if len(b) < diagMsgLen || b[1] != unix.BPF_TCP_LISTEN {
		return listenSock{}, false
	}
	id := b[diagSockID:]
	port := int(binary.BigEndian.Uint16(id[0:2]))
	var ip net.IP
	switch b[0] {
	case unix.AF_INET:
		ip = net.IP(append([]byte(nil), id[4:8]...)).To4()
	case unix.AF_INET6:
		ip = net.IP(append([]byte(nil), id[4:20]...))
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
	default:
		return listenSock{}, false
	}
	inode := binary.NativeEndian.Uint32(b[diagInodeOff:])
	return listenSock{ip: ip, port: port, inode: fmt.Sprint(inode)}, true
}
