package bindsync

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const syscallNoFollow = syscall.O_NOFOLLOW

// readLoop applies the peer's messages in order.
func (s *Session) readLoop() error {
	for {
		m, err := readMsg(s.r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return err
		}
		switch m.T {
		case tOp:
			if err := s.apply(m); err != nil {
				return err
			}
		case tBarrier:
			s.control(msg{T: tAck, ID: m.ID})
			s.mu.Lock()
			if ch := s.pulls[m.ID]; m.Pull && ch != nil {
				close(ch)
				delete(s.pulls, m.ID)
			}
			s.mu.Unlock()
			s.readyOnce.Do(func() { close(s.ready) })
		case tAck:
			s.mu.Lock()
			if ch := s.waiters[m.ID]; ch != nil {
				close(ch)
				delete(s.waiters, m.ID)
			}
			s.mu.Unlock()
		case tFlush:
			if err := s.cookie(m.ID, true); err != nil {
				return err
			}
		default:
			return fmt.Errorf("bind sync: unknown message %q", m.T)
		}
	}
}

func readMsg(r interface {
	ReadSlice(byte) ([]byte, error)
}) (msg, error) {
	var m msg
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return m, io.EOF
		}
		return m, fmt.Errorf("bind sync: read: %w", err)
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("bind sync: bad message: %w", err)
	}
	return m, nil
}

// apply carries out one op of the peer (or skips it, consuming its bytes,
// when this side's change of the path is later, or this side does not
// take changes).
func (s *Session) apply(m msg) error {
	rel, err := cleanRel(m.Path)
	if err == nil && s.cfg.name != "" && rel != s.cfg.name {
		err = fmt.Errorf("path %q outside a single-file bind", m.Path)
	}
	skip := err != nil || !s.cfg.recv
	if err != nil {
		s.cfg.log.Warn("bind sync: op refused", "path", m.Path, "err", err)
	}
	if !skip {
		s.mu.Lock()
		if st, ok := s.stamps[rel]; ok && st > m.Stamp {
			skip = true // this side's change is later: it wins
		}
		s.last = max(s.last, m.Stamp)
		s.mu.Unlock()
	}
	if skip {
		if m.Op == opPut {
			if _, err := io.CopyN(io.Discard, s.r, m.Size); err != nil {
				return fmt.Errorf("bind sync: read: %w", err)
			}
		}
		return nil
	}
	p := s.abs(rel)
	if err := s.parents(rel, m.Op != opRm); err != nil {
		s.cfg.log.Warn("bind sync: op refused", "path", rel, "err", err)
		if m.Op == opPut {
			_, err := io.CopyN(io.Discard, s.r, m.Size)
			return err
		}
		return nil
	}
	switch m.Op {
	case opPut:
		return s.applyPut(rel, p, m)
	case opMkdir:
		s.fmu.Lock()
		defer s.fmu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		info, err := os.Lstat(p)
		if err == nil && !info.IsDir() {
			_ = os.RemoveAll(p)
		}
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			s.cfg.log.Warn("bind sync: mkdir", "path", rel, "err", err)
			return nil
		}
		_ = os.Chmod(p, perm(m.Mode))
		s.record(rel, p, m.Stamp)
	case opLink:
		s.fmu.Lock()
		defer s.fmu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = os.RemoveAll(p)
		if err := os.Symlink(m.Target, p); err != nil {
			s.cfg.log.Warn("bind sync: symlink", "path", rel, "err", err)
			return nil
		}
		s.record(rel, p, m.Stamp)
	case opRm:
		s.fmu.Lock()
		defer s.fmu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := os.RemoveAll(p); err != nil {
			s.cfg.log.Warn("bind sync: remove", "path", rel, "err", err)
		}
		s.forget(rel)
		s.stamps[rel] = m.Stamp
	default:
		return fmt.Errorf("bind sync: unknown op %q", m.Op)
	}
	return nil
}

// record notes rel as applied (so its report is not shipped back); s.mu
// is held.
func (s *Session) record(rel, p string, stamp int64) {
	s.stamps[rel] = stamp
	info, err := os.Lstat(p)
	if err != nil {
		return
	}
	var target string
	if info.Mode()&fs.ModeSymlink != 0 {
		target, _ = os.Readlink(p)
	}
	s.known[rel] = sigOf(info, target)
}

// applyPut writes a file: into a temporary file renamed over it, or in
// place for a single-file bind (whose inode is what is mounted).
func (s *Session) applyPut(rel, p string, m msg) error {
	var f *os.File
	var err error
	if s.cfg.name != "" {
		// In place: nothing may look at the file until it is written.
		s.fmu.Lock()
		defer s.fmu.Unlock()
		if info, lerr := os.Lstat(p); lerr == nil && !info.Mode().IsRegular() {
			_ = os.RemoveAll(p)
		}
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	} else {
		f, err = os.CreateTemp(filepath.Dir(p), tempPrefix)
	}
	if err != nil {
		s.cfg.log.Warn("bind sync: write", "path", rel, "err", err)
		_, err := io.CopyN(io.Discard, s.r, m.Size)
		return err
	}
	var dst io.Writer = f
	h := sha256.New()
	if m.Size <= smallFile {
		dst = io.MultiWriter(f, h)
	}
	if _, err := io.CopyN(dst, s.r, m.Size); err != nil {
		f.Close()
		os.Remove(f.Name())
		if isReadErr(err) {
			return err // a local write failed: fatal, the stream is out of step
		}
		return fmt.Errorf("bind sync: read: %w", err)
	}
	_ = f.Chmod(perm(m.Mode))
	f.Close()
	mt := time.Unix(0, m.MTime)
	_ = os.Chtimes(f.Name(), mt, mt)
	if s.cfg.name == "" {
		s.fmu.Lock()
		defer s.fmu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.name == "" {
		if info, err := os.Lstat(p); err == nil && info.IsDir() {
			_ = os.RemoveAll(p)
		}
		if err := os.Rename(f.Name(), p); err != nil {
			os.Remove(f.Name())
			s.cfg.log.Warn("bind sync: write", "path", rel, "err", err)
			return nil
		}
	}
	s.record(rel, p, m.Stamp)
	if k, ok := s.known[rel]; ok && m.Size <= smallFile {
		h.Sum(k.sum[:0])
		s.known[rel] = k
	}
	return nil
}

// perm is the part of a mode chmod sets.
func perm(mode uint32) fs.FileMode {
	return fs.FileMode(mode) & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// cleanRel checks a peer's path: relative, inside the tree.
func cleanRel(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\x00") {
		return "", fmt.Errorf("bad path %q", p)
	}
	c := path.Clean(p)
	if c != p || c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("bad path %q", p)
	}
	for _, part := range strings.Split(c, "/") {
		if strings.HasPrefix(part, cookiePrefix) || strings.HasPrefix(part, tempPrefix) {
			return "", fmt.Errorf("reserved name in %q", p)
		}
	}
	return c, nil
}

// parents checks that no directory on the way to rel is a symlink (an op
// is never applied through one: a link pointing out of the bind must not
// let the peer write outside it), creating missing ones if create.
func (s *Session) parents(rel string, create bool) error {
	dir := s.cfg.root
	parts := strings.Split(rel, "/")
	for _, part := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, part)
		info, err := os.Lstat(dir)
		switch {
		case err == nil && info.IsDir():
			continue
		case err == nil:
			return fmt.Errorf("%s is not a directory (symlinks are not followed)", dir)
		case errors.Is(err, fs.ErrNotExist) && create:
			if err := unix.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				return err
			}
		case errors.Is(err, fs.ErrNotExist):
			return nil
		default:
			return err
		}
	}
	return nil
}
