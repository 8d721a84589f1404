package bindsync

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Host describes the host side of a bind.
type Host struct {
	// Path is the bind's source on this machine.
	Path string
	// ReadOnly binds (:ro) are not written back.
	ReadOnly bool
	// Create makes a missing Path as a directory (docker -v does; --mount
	// type=bind refuses a missing source).
	Create bool
	Logger *slog.Logger
}

// ServeHost runs the host side of a bind on conn until the stream or ctx
// ends: it says what the bind is, ships the tree, then keeps both sides in
// step. A source that cannot be served is told to the agent and returned.
func ServeHost(ctx context.Context, conn net.Conn, h Host) error {
	defer conn.Close()
	cfg := config{send: true, recv: !h.ReadOnly, log: h.Logger}
	hello := msg{T: tHello, ReadOnly: h.ReadOnly}
	info, err := os.Stat(h.Path)
	if errors.Is(err, fs.ErrNotExist) && h.Create {
		if err = os.MkdirAll(h.Path, 0o755); err == nil {
			info, err = os.Stat(h.Path)
		}
	}
	switch {
	case err != nil:
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("bind source path does not exist: %s", h.Path)
		}
	case info.IsDir():
		cfg.root, hello.Kind = filepath.Clean(h.Path), KindDir
	case info.Mode().IsRegular():
		cfg.root, cfg.name, hello.Kind = filepath.Dir(h.Path), filepath.Base(h.Path), KindFile
	default:
		err = fmt.Errorf("bind source %s is neither a directory nor a regular file", h.Path)
	}
	if err != nil {
		_ = writeLine(conn, msg{T: tHello, Error: err.Error()})
		return err
	}
	hello.Name, hello.Now = cfg.name, time.Now().UnixNano()
	if err := writeLine(conn, hello); err != nil {
		return err
	}
	// The agent's manifest: what it has from an earlier session (or its
	// empty staging tree); only what differs is shipped.
	r := bufio.NewReaderSize(conn, 64<<10)
	have := &State{known: map[string]sig{}, stamps: map[string]int64{}}
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	for {
		m, err := readMsg(r)
		if err != nil {
			return fmt.Errorf("bind sync: agent manifest: %w", err)
		}
		if m.T == tHaveEnd {
			break
		}
		if m.T != tHave {
			return fmt.Errorf("bind sync: agent manifest: unexpected %q", m.T)
		}
		if rel, err := cleanRel(m.Path); err == nil {
			k := sig{mode: fs.FileMode(m.Mode), size: m.Size, mtime: m.MTime, target: m.Target}
			copy(k.sum[:], m.Sum)
			have.known[rel] = k
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	s, err := newSession(conn, r, cfg, 0, have)
	if err != nil {
		return err
	}
	s.start()
	stop := context.AfterFunc(ctx, func() { s.fail(ctx.Err()) })
	defer stop()
	go func() {
		// The initial copy: everything queued so far, then a barrier.
		if err := s.Sync(ctx); err != nil {
			s.cfg.log.Debug("bind sync: initial barrier", "err", err)
		}
	}()
	<-s.done
	s.wg.Wait()
	return s.Err()
}

// Agent describes the agent's side of a bind.
type Agent struct {
	// Dir is the staging directory the bind's tree is kept in (mounted at
	// the bind's destination). It is made if missing.
	Dir string
	// Prev is the State of the bind's previous session (nil for the
	// first): what the host had then. Changes made on either side since
	// are shipped, deletions included; the rest is not copied again.
	Prev   *State
	Logger *slog.Logger
}

// Opened is the agent's side of a running bind.
type Opened struct {
	*Session
	// Kind is KindDir or KindFile; for KindFile, File is the file in Dir.
	Kind     string
	File     string
	ReadOnly bool
}

// Open starts the agent's side of a bind on conn: it reads the host's
// hello and starts the session; Ready is closed once the host's tree is
// in Dir.
func Open(conn net.Conn, a Agent) (*Opened, error) {
	r := bufio.NewReaderSize(conn, 64<<10)
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	hello, err := readMsg(r)
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bind sync hello: %w", err)
	}
	if hello.Error != "" {
		conn.Close()
		return nil, errors.New(hello.Error)
	}
	if hello.T != tHello || (hello.Kind != KindDir && hello.Kind != KindFile) {
		conn.Close()
		return nil, fmt.Errorf("bind sync: bad hello %+v", hello)
	}
	if err := os.MkdirAll(a.Dir, 0o755); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bind staging directory: %w", err)
	}
	cfg := config{root: a.Dir, send: !hello.ReadOnly, recv: true, peerHas: a.Prev == nil, log: a.Logger}
	o := &Opened{Kind: hello.Kind, ReadOnly: hello.ReadOnly}
	if hello.Kind == KindFile {
		name, err := cleanRel(hello.Name)
		if err != nil || filepath.Base(name) != name {
			conn.Close()
			return nil, fmt.Errorf("bind sync: bad file name %q", hello.Name)
		}
		cfg.name, o.File = name, filepath.Join(a.Dir, name)
		// The file exists before the mount, so its inode is the one mounted.
		if f, err := os.OpenFile(o.File, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	s, err := newSession(conn, r, cfg, hello.Now-time.Now().UnixNano(), a.Prev)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.mu.Lock()
	for p, k := range s.known {
		m := msg{T: tHave, Path: p, Mode: uint32(k.mode), Size: k.size, MTime: k.mtime, Target: k.target}
		if k.sum != ([32]byte{}) {
			m.Sum = k.sum[:]
		}
		_ = s.send(m)
	}
	s.mu.Unlock()
	if err := s.send(msg{T: tHaveEnd}); err != nil {
		s.fail(err)
		return nil, err
	}
	s.start()
	o.Session = s
	return o, nil
}

func writeLine(c net.Conn, m msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = c.Write(append(b, '\n'))
	return err
}

// Serve runs the host side of a bind in this process and returns the
// agent's end of its stream, for a caller that splices it with a mesh
// stream (the --dev control plane, the forwarder). The host side ends
// when that end is closed.
func Serve(h Host) (net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("bind sync: socketpair: %w", err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "bindsync")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			if i == 1 {
				conns[0].Close()
			} else {
				unix.Close(fds[1])
			}
			return nil, fmt.Errorf("bind sync: %w", err)
		}
		conns[i] = c
	}
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	go func() {
		if err := ServeHost(context.Background(), conns[0], h); err != nil && !errors.Is(err, io.EOF) {
			log.Info("host bind sync ended", "source", h.Path, "err", err)
		}
	}()
	return conns[1], nil
}
