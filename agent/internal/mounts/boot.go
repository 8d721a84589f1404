package mounts

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sockerless/sockerless/agent/proto"
)

// Environment that tells a re-executed agent its part.
const (
	envRole      = "SOCKERLESS_AGENT_ROLE"       // "mounter": the helper
	envMounterFD = "SOCKERLESS_AGENT_MOUNTER_FD" // the reduced agent's socket to it
)

// dockerCaps is docker's default capability set (CapEff of a root
// container: 0xa80425fb).
const dockerCaps uint64 = 1<<unix.CAP_CHOWN | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_FOWNER |
	1<<unix.CAP_FSETID | 1<<unix.CAP_KILL | 1<<unix.CAP_SETGID | 1<<unix.CAP_SETUID |
	1<<unix.CAP_SETPCAP | 1<<unix.CAP_NET_BIND_SERVICE | 1<<unix.CAP_NET_RAW |
	1<<unix.CAP_SYS_CHROOT | 1<<unix.CAP_MKNOD | 1<<unix.CAP_AUDIT_WRITE | 1<<unix.CAP_SETFCAP

// Mounter applies an invocation's mounts (and covers the volume root),
// then, in later calls, the host binds' mounts.
type Mounter interface {
	Mount(ms []proto.Mount) error
}

// Local applies mounts in this process: an agent that never held more
// than docker's capabilities (then only containers without mounts and a
// function without a volume file system start), and tests.
type Local struct{ Root string }

// Mount implements Mounter.
func (l Local) Mount(ms []proto.Mount) error { return Apply(l.Root, ms) }

// IsHelper reports whether this process is the privileged mount helper;
// main then runs RunHelper and exits.
func IsHelper() bool { return os.Getenv(envRole) == "mounter" }

// RunHelper serves mount requests on fd 3, in order, until the agent
// closes it, and returns the exit code.
func RunHelper() int {
	f := os.NewFile(3, "mounter")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockerless mount helper:", err)
		return 1
	}
	defer conn.Close()
	dec := json.NewDecoder(bufio.NewReader(conn))
	enc := json.NewEncoder(conn)
	for first := true; ; first = false {
		var req []proto.Mount
		if err := dec.Decode(&req); err != nil {
			return 0 // the agent ended
		}
		var resp struct {
			Error string `json:"error,omitempty"`
		}
		if !first && !allBinds(req) {
			resp.Error = "only host binds are mounted after the invocation's mounts"
		} else if err := Apply(proto.VolumesRoot, req); err != nil {
			resp.Error = err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			return 0
		}
	}
}

func allBinds(ms []proto.Mount) bool {
	for _, m := range ms {
		if m.Type != proto.MountBind {
			return false
		}
	}
	return len(ms) > 0
}

// remote asks the helper over its socket, one request at a time.
type remote struct {
	mu   *sync.Mutex
	conn net.Conn
}

// Mount implements Mounter; the helper serves requests until the agent
// exits (an instance serves one invocation).
func (r remote) Mount(ms []proto.Mount) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ms == nil {
		ms = []proto.Mount{}
	}
	if err := json.NewEncoder(r.conn).Encode(ms); err != nil {
		return fmt.Errorf("ask the mount helper: %w", err)
	}
	var resp struct {
		Error string `json:"error,omitempty"`
	}
	if err := json.NewDecoder(r.conn).Decode(&resp); err != nil {
		return fmt.Errorf("mount helper: %w", err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	return nil
}

// Boot is the agent's first step. An agent holding capabilities beyond
// docker's (gen2's root, or gcpsim granting what gen2 grants) starts the
// mount helper, cuts its own bounding set to docker's set and executes
// itself again, which does not return; the re-executed agent (or one that
// never held more) gets the Mounter to use.
func Boot() (Mounter, error) {
	if v := os.Getenv(envMounterFD); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q", envMounterFD, v)
		}
		os.Unsetenv(envMounterFD)
		f := os.NewFile(uintptr(fd), "mounter")
		unix.CloseOnExec(fd)
		conn, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("mount helper socket: %w", err)
		}
		return remote{mu: &sync.Mutex{}, conn: conn}, nil
	}
	bnd, err := capSet("CapBnd")
	if err != nil || os.Getuid() != 0 || bnd&^dockerCaps == 0 {
		return Local{Root: proto.VolumesRoot}, nil
	}
	return nil, split()
}

// split starts the helper and re-executes the agent with docker's
// capability bounding set; it returns only on failure.
func split() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	// The agent may run through the ELF loader it brought along
	// (/proc/self/exe is then the loader): the kernel's own command line
	// starts either the same way again.
	argv, err := cmdline()
	if err != nil {
		return err
	}
	helperEnd := os.NewFile(uintptr(fds[1]), "mounter")
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = argv
	cmd.Env = append(os.Environ(), envRole+"=mounter")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{helperEnd}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the mount helper: %w", err)
	}
	helperEnd.Close()
	// The helper stays our child: the process supervisor reaps it.
	runtime.LockOSThread() // the bounding set is per thread; exec keeps this one's
	for c := 0; c < 64; c++ {
		if dockerCaps&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETFD, 0); err != nil {
		return fmt.Errorf("keep the helper socket: %w", err)
	}
	env := append(os.Environ(), envMounterFD+"="+strconv.Itoa(fds[0]))
	return fmt.Errorf("re-execute the agent: %w", syscall.Exec("/proc/self/exe", argv, env))
}

// cmdline is this process's command line as the kernel started it.
func cmdline() ([]string, error) {
	b, err := os.ReadFile("/proc/self/cmdline")
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("read the agent's command line: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// capSet reads a capability set of this process from /proc/self/status.
func capSet(name string) (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", name)
}
