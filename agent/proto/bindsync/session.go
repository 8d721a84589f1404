package bindsync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Names of the files a session makes in its tree: never synced.
const (
	cookiePrefix = ".sockerless-cookie-"
	tempPrefix   = ".sockerless-sync-"
)

// Message types (msg.T).
const (
	tHello   = "hello"
	tOp      = "op"
	tBarrier = "barrier"
	tAck     = "ack"
	tFlush   = "flush"
	tHave    = "have"     // agent→host after the hello: a path the agent has
	tHaveEnd = "have-end" // end of the agent's manifest
)

// Ops (msg.Op).
const (
	opPut   = "put"
	opMkdir = "mkdir"
	opLink  = "link"
	opRm    = "rm"
)

// Bind kinds (hello).
const (
	KindDir  = "dir"
	KindFile = "file"
)

// msg is one line of the protocol.
type msg struct {
	T string `json:"t"`
	// hello
	Kind     string `json:"kind,omitempty"`
	Name     string `json:"name,omitempty"`
	Now      int64  `json:"now,omitempty"`
	ReadOnly bool   `json:"ro,omitempty"`
	Error    string `json:"error,omitempty"`
	// op
	Op     string `json:"op,omitempty"`
	Path   string `json:"path,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
	MTime  int64  `json:"mtime,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Target string `json:"target,omitempty"`
	Stamp  int64  `json:"stamp,omitempty"`
	Sum    []byte `json:"sum,omitempty"` // a small file's SHA-256 (have)
	// barrier, ack, flush
	ID   uint64 `json:"id,omitempty"`
	Pull bool   `json:"pull,omitempty"`
}

// sig is the state of a path a side last shipped or applied.
type sig struct {
	mode   fs.FileMode
	size   int64
	mtime  int64
	target string
	// sum is a small file's SHA-256 (zero: not known). File times tick
	// coarsely (a few ms), so a rewrite of the same size within one tick
	// looks unchanged by size and time alone: the content tells.
	sum [32]byte
}

// smallFile is the largest file whose content sum a sig keeps.
const smallFile = 64 << 10

// same reports whether the file at p, whose metadata is cur, is what old
// recorded.
func same(old, cur sig, p string) bool {
	sum := old.sum
	old.sum = [32]byte{}
	if old != cur {
		return false
	}
	if sum == ([32]byte{}) || !cur.mode.IsRegular() || cur.size > smallFile {
		return true
	}
	got, ok := fileSum(p)
	return ok && got == sum
}

// fileSum returns the SHA-256 of the small file at p.
func fileSum(p string) ([32]byte, bool) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscallNoFollow, 0)
	if err != nil {
		return [32]byte{}, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, smallFile+1))
	if err != nil || len(b) > smallFile {
		return [32]byte{}, false
	}
	return sha256.Sum256(b), true
}

func sigOf(info fs.FileInfo, target string) sig {
	s := sig{mode: info.Mode()}
	switch {
	case info.Mode().IsRegular():
		s.size, s.mtime = info.Size(), info.ModTime().UnixNano()
	case info.Mode()&fs.ModeSymlink != 0:
		s.target = target
	}
	return s
}

// item is a queued path to ship, or a barrier whose cookie was seen.
type item struct {
	path    string
	barrier bool
	id      uint64
	pull    bool
	cookie  string
}

// config is what a session syncs.
type config struct {
	root string // the directory synced (a file's directory)
	name string // one file's name in root; "" for the whole directory
	send bool   // ship local changes
	recv bool   // apply the peer's changes
	// peerHas: the tree as found at the start is what the peer has (the
	// agent's staging directory), not changes to ship.
	peerHas bool
	log     *slog.Logger
}

// Session is one side of a bind's sync.
type Session struct {
	cfg    config
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	watch  *fsnotify.Watcher
	offset int64 // added to the local clock: the host's clock
	last   int64 // the latest stamp made or applied (s.mu)

	// fmu orders looking at a path (to ship it) and applying the peer's
	// op to it; taken before mu.
	fmu     sync.Mutex
	mu      sync.Mutex
	cond    *sync.Cond
	known   map[string]sig
	stamps  map[string]int64
	queue   []item
	queued  map[string]bool
	ctl     []msg
	waiters map[uint64]chan struct{} // own barriers awaiting the peer's ack
	pulls   map[uint64]chan struct{} // pulls awaiting the peer's barrier
	cookies map[string]item          // cookie name → barrier to send once seen
	err     error
	nextID  atomic.Uint64

	ready     chan struct{}
	readyOnce sync.Once
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// State is what one side of a bind last shipped or applied, carried into
// the next session of the bind after its stream ended (Agent.Prev).
type State struct {
	known  map[string]sig
	stamps map[string]int64
}

// State returns a copy of what this side last shipped or applied.
func (s *Session) State() *State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &State{known: make(map[string]sig, len(s.known)), stamps: make(map[string]int64, len(s.stamps))}
	for k, v := range s.known {
		st.known[k] = v
	}
	for k, v := range s.stamps {
		st.stamps[k] = v
	}
	return st
}

// newSession makes a side; prev (nil: none) is what the peer already has.
func newSession(conn net.Conn, r *bufio.Reader, cfg config, offset int64, prev *State) (*Session, error) {
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	s := &Session{
		cfg: cfg, conn: conn, r: r, w: bufio.NewWriterSize(conn, 256<<10), offset: offset,
		known: map[string]sig{}, stamps: map[string]int64{}, queued: map[string]bool{},
		waiters: map[uint64]chan struct{}{}, pulls: map[uint64]chan struct{}{}, cookies: map[string]item{},
		ready: make(chan struct{}), done: make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	if prev != nil {
		for k, v := range prev.known {
			s.known[k] = v
		}
		for k, v := range prev.stamps {
			s.stamps[k] = v
		}
	}
	if cfg.send {
		w, err := fsnotify.NewBufferedWatcher(4096)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", cfg.root, err)
		}
		s.watch = w
		if err := s.watchTree("", !cfg.peerHas); err != nil {
			w.Close()
			return nil, err
		}
		if prev != nil {
			// What the peer has and this side no longer does goes as a
			// removal.
			for k := range prev.known {
				s.enqueue(k)
			}
		}
	}
	return s, nil
}

// start runs the session's goroutines.
func (s *Session) start() {
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.fail(s.readLoop()) }()
	go func() { defer s.wg.Done(); s.fail(s.writeLoop()) }()
	if s.watch != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.watchLoop() }()
	}
}

// now stamps a local change: the host's clock, but always later than
// every stamp this side made or applied before (a hybrid logical clock),
// so a change made after seeing the peer's wins over it whatever the
// clocks' skew. s.mu is held.
func (s *Session) now() int64 {
	t := time.Now().UnixNano() + s.offset
	if t <= s.last {
		t = s.last + 1
	}
	s.last = t
	return t
}

// Ready is closed once the first barrier from the peer was applied: on
// the agent, when the host's initial copy is complete.
func (s *Session) Ready() <-chan struct{} { return s.ready }

// Done is closed when the session ended; Err says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (nil while it runs).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the session.
func (s *Session) Close() error {
	s.fail(errors.New("session closed"))
	s.wg.Wait()
	return nil
}

func (s *Session) fail(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		if err == nil {
			err = io.EOF
		}
		s.err = err
		s.cond.Broadcast()
		s.mu.Unlock()
		close(s.done)
		s.conn.Close()
		if s.watch != nil {
			s.watch.Close()
		}
	})
}

// Sync ships every local change made before it was called and returns
// once the peer applied them.
func (s *Session) Sync(ctx context.Context) error {
	if !s.cfg.send {
		return nil
	}
	id := s.nextID.Add(1)
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, id)
		s.mu.Unlock()
	}()
	if err := s.cookie(id, false); err != nil {
		return err
	}
	return s.wait(ctx, ch)
}

// Pull returns once every change the peer made before it was called is
// applied here.
func (s *Session) Pull(ctx context.Context) error {
	id := s.nextID.Add(1)
	ch := make(chan struct{})
	s.mu.Lock()
	s.pulls[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pulls, id)
		s.mu.Unlock()
	}()
	s.control(msg{T: tFlush, ID: id})
	return s.wait(ctx, ch)
}

func (s *Session) wait(ctx context.Context, ch chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-s.done:
		return fmt.Errorf("bind sync: %w", s.Err())
	case <-ctx.Done():
		return fmt.Errorf("bind sync barrier: %w", ctx.Err())
	}
}

// cookie writes a barrier's cookie file; the barrier is sent when the
// watcher reports it, after every change reported before.
func (s *Session) cookie(id uint64, pull bool) error {
	if !s.cfg.send {
		s.control(msg{T: tBarrier, ID: id, Pull: pull})
		return nil
	}
	name := cookiePrefix + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatUint(id, 10)
	s.mu.Lock()
	s.cookies[name] = item{barrier: true, id: id, pull: pull, cookie: name}
	s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.cfg.root, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		s.mu.Lock()
		delete(s.cookies, name)
		s.mu.Unlock()
		return fmt.Errorf("bind sync barrier: %w", err)
	}
	return f.Close()
}

func (s *Session) control(m msg) {
	s.mu.Lock()
	s.ctl = append(s.ctl, m)
	s.cond.Broadcast()
	s.mu.Unlock()
}

// enqueue queues rel to be shipped in its state at shipping time.
func (s *Session) enqueue(rel string) {
	s.mu.Lock()
	if !s.queued[rel] {
		s.queued[rel] = true
		s.queue = append(s.queue, item{path: rel})
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

func (s *Session) enqueueBarrier(it item) {
	s.mu.Lock()
	s.queue = append(s.queue, it)
	s.cond.Broadcast()
	s.mu.Unlock()
}

// abs returns rel's path in the tree.
func (s *Session) abs(rel string) string {
	if rel == "" {
		return s.cfg.root
	}
	return filepath.Join(s.cfg.root, filepath.FromSlash(rel))
}

// rel returns p's path relative to the root, slash-separated; ok is
// false for paths outside the synced set.
func (s *Session) rel(p string) (string, bool) {
	r, err := filepath.Rel(s.cfg.root, p)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", false
	}
	if r == "." {
		r = ""
	}
	r = filepath.ToSlash(r)
	if s.cfg.name != "" && r != s.cfg.name {
		return "", false
	}
	return r, true
}

// watchTree watches the directory rel and, for a directory bind, every
// directory below it, and queues what it holds (or, without ship, notes
// it as what the peer has).
func (s *Session) watchTree(rel string, ship bool) error {
	note := func(r string) {
		if ship {
			s.enqueue(r)
			return
		}
		p := s.abs(r)
		info, err := os.Lstat(p)
		if err != nil {
			return
		}
		var target string
		if info.Mode()&fs.ModeSymlink != 0 {
			target, _ = os.Readlink(p)
		}
		s.mu.Lock()
		s.known[r] = sigOf(info, target)
		s.mu.Unlock()
	}
	if s.cfg.name != "" {
		if err := s.watch.Add(s.cfg.root); err != nil {
			return fmt.Errorf("watch %s: %w", s.cfg.root, err)
		}
		note(s.cfg.name)
		return nil
	}
	return filepath.WalkDir(s.abs(rel), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone meanwhile: its removal is reported
			}
			return err
		}
		r, _ := s.rel(p)
		if skipName(d.Name()) && r != "" {
			return nil
		}
		if d.IsDir() {
			if err := s.watch.Add(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("watch %s: %w", p, err)
			}
		}
		if r != "" {
			note(r)
		}
		return nil
	})
}

func skipName(name string) bool {
	return strings.HasPrefix(name, cookiePrefix) || strings.HasPrefix(name, tempPrefix)
}

// watchLoop turns the watcher's reports into queued paths and barriers.
func (s *Session) watchLoop() {
	for {
		select {
		case ev, ok := <-s.watch.Events:
			if !ok {
				return
			}
			s.event(ev)
		case err, ok := <-s.watch.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				s.cfg.log.Warn("bind sync: watcher overflowed; rescanning", "root", s.cfg.root)
				s.rescan()
				continue
			}
			s.cfg.log.Warn("bind sync: watcher", "err", err)
		case <-s.done:
			return
		}
	}
}

func (s *Session) event(ev fsnotify.Event) {
	base := filepath.Base(ev.Name)
	if strings.HasPrefix(base, cookiePrefix) {
		if ev.Has(fsnotify.Create) {
			s.mu.Lock()
			it, ok := s.cookies[base]
			delete(s.cookies, base)
			s.mu.Unlock()
			if ok {
				s.enqueueBarrier(it)
			}
		}
		return
	}
	if strings.HasPrefix(base, tempPrefix) {
		return
	}
	rel, ok := s.rel(ev.Name)
	if !ok || rel == "" {
		return
	}
	if ev.Has(fsnotify.Create) && s.cfg.name == "" {
		if info, err := os.Lstat(ev.Name); err == nil && info.IsDir() {
			if err := s.watchTree(rel, true); err != nil {
				s.cfg.log.Warn("bind sync: watch a new directory", "dir", rel, "err", err)
			}
			return
		}
	}
	s.enqueue(rel)
}

// rescan queues every path, present or known, after lost reports; the
// barriers whose cookies may have been lost follow them.
func (s *Session) rescan() {
	if err := s.watchTree("", true); err != nil {
		s.cfg.log.Warn("bind sync: rescan", "err", err)
	}
	s.mu.Lock()
	var known []string
	for p := range s.known {
		known = append(known, p)
	}
	cookies := s.cookies
	s.cookies = map[string]item{}
	s.mu.Unlock()
	for _, p := range known {
		s.enqueue(p)
	}
	for _, it := range cookies {
		s.enqueueBarrier(it)
	}
}

// writeLoop sends control messages first, then queued paths and barriers.
func (s *Session) writeLoop() error {
	for {
		s.mu.Lock()
		for len(s.ctl) == 0 && len(s.queue) == 0 && s.err == nil {
			s.mu.Unlock()
			if err := s.w.Flush(); err != nil {
				return err
			}
			s.mu.Lock()
			if len(s.ctl) == 0 && len(s.queue) == 0 && s.err == nil {
				s.cond.Wait()
			}
		}
		if s.err != nil {
			s.mu.Unlock()
			return nil
		}
		if len(s.ctl) > 0 {
			m := s.ctl[0]
			s.ctl = s.ctl[1:]
			s.mu.Unlock()
			if err := s.send(m); err != nil {
				return err
			}
			continue
		}
		it := s.queue[0]
		s.queue = s.queue[1:]
		if !it.barrier {
			delete(s.queued, it.path)
		}
		s.mu.Unlock()
		if it.barrier {
			if it.cookie != "" {
				_ = os.Remove(filepath.Join(s.cfg.root, it.cookie))
			}
			if err := s.send(msg{T: tBarrier, ID: it.id, Pull: it.pull}); err != nil {
				return err
			}
			continue
		}
		if err := s.ship(it.path); err != nil {
			return err
		}
	}
}

func (s *Session) send(m msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = s.w.Write(b)
	return err
}

// ship sends rel's current state if it differs from what the peer has.
func (s *Session) ship(rel string) error {
	m, f, src, err := s.prepare(rel)
	if err != nil || m == nil {
		return err
	}
	if f != nil {
		defer f.Close()
	}
	if err := s.send(*m); err != nil {
		return err
	}
	if m.Op != opPut {
		return nil
	}
	n, err := io.Copy(s.w, io.LimitReader(src, m.Size))
	if err != nil && !isReadErr(err) {
		return err
	}
	if n < m.Size { // shrank meanwhile: padded, and its report ships it again
		if _, err := io.CopyN(s.w, zeros{}, m.Size-n); err != nil {
			return err
		}
	}
	return nil
}

// prepare returns the op that brings the peer to rel's state, or nil if
// it has it, and for a put the bytes to send (a large file's are read
// while sending). It excludes applying (fmu): a path the peer's op is
// being applied to is looked at before or after, never in between.
func (s *Session) prepare(rel string) (*msg, *os.File, io.Reader, error) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	p := s.abs(rel)
	info, err := os.Lstat(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.cfg.log.Warn("bind sync: stat", "path", rel, "err", err)
			return nil, nil, nil, nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, had := s.known[rel]; !had {
			return nil, nil, nil, nil
		}
		s.forget(rel)
		stamp := s.now()
		s.stamps[rel] = stamp
		return &msg{T: tOp, Op: opRm, Path: rel, Stamp: stamp}, nil, nil, nil
	}
	var target string
	var f *os.File
	var src io.Reader
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		if target, err = os.Readlink(p); err != nil {
			return nil, nil, nil, nil // gone meanwhile
		}
	case info.Mode().IsRegular():
		if f, err = os.OpenFile(p, os.O_RDONLY|syscallNoFollow, 0); err != nil {
			return nil, nil, nil, nil // gone or replaced meanwhile: reported again
		}
		if info, err = f.Stat(); err != nil {
			f.Close()
			return nil, nil, nil, nil
		}
		src = f
	case !info.IsDir():
		return nil, nil, nil, nil // sockets, devices, pipes: not synced
	}
	cur := sigOf(info, target)
	s.mu.Lock()
	old, ok := s.known[rel]
	s.mu.Unlock()
	if ok && same(old, cur, p) {
		if f != nil {
			f.Close()
		}
		return nil, nil, nil, nil
	}
	if f != nil && info.Size() <= smallFile {
		b, err := io.ReadAll(io.LimitReader(f, info.Size()))
		f.Close()
		if err != nil {
			return nil, nil, nil, nil // reported again
		}
		cur.sum, f, src = sha256.Sum256(b), nil, bytes.NewReader(b)
	}
	s.mu.Lock()
	s.known[rel] = cur
	stamp := s.now()
	s.stamps[rel] = stamp
	s.mu.Unlock()
	m := &msg{T: tOp, Path: rel, Mode: uint32(info.Mode()), Stamp: stamp}
	switch {
	case info.IsDir():
		m.Op = opMkdir
	case target != "":
		m.Op, m.Target = opLink, target
	default:
		m.Op, m.Size, m.MTime = opPut, info.Size(), info.ModTime().UnixNano()
	}
	return m, f, src, nil
}

// isReadErr tells a failed read of the local file from a failed write to
// the peer (which ends the session).
func isReadErr(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// forget drops rel and everything below it from what the peer has.
func (s *Session) forget(rel string) {
	delete(s.known, rel)
	prefix := rel + "/"
	for k := range s.known {
		if strings.HasPrefix(k, prefix) {
			delete(s.known, k)
		}
	}
}
