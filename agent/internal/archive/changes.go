package archive

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/sockerless/sockerless/agent/proto"
)

// Index is an image's flattened filesystem by path, with each directory's
// children, as the control plane sends it (proto.FileEntry JSON lines).
type Index struct {
	entries  map[string]proto.FileEntry
	children map[string][]string
}

// ReadIndex decodes an index.
func ReadIndex(r io.Reader) (*Index, error) {
	idx := &Index{entries: map[string]proto.FileEntry{}, children: map[string][]string{}}
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var e proto.FileEntry
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read image index: %w", err)
		}
		p := path.Clean("/" + e.Path)
		e.Path = p
		idx.entries[p] = e
		if p != "/" {
			dir := path.Dir(p)
			idx.children[dir] = append(idx.children[dir], p)
		}
	}
	return idx, nil
}

// Tree is a container's root filesystem as diff, commit and export see
// it: mount points (proc, dev, volumes, tmpfs, bind-mounted files) are
// leaves that are never descended into nor reported changed, and Skip
// paths (the agent's own files, the files docker manages for a container)
// are left out entirely.
type Tree struct {
	// Root is where the tree is on this machine ("/" in an instance).
	Root string
	// Mounts are the mount points below Root, as container paths.
	Mounts map[string]bool
	// Skip are container paths left out with everything beneath them.
	Skip []string
}

// InstanceTree is the running instance's root: its mount points read from
// /proc/self/mountinfo, and docker's managed files and the agent's
// directory skipped.
func InstanceTree() (*Tree, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return nil, err
	}
	return &Tree{Root: "/", Mounts: mounts, Skip: []string{
		"/.sockerless", "/.dockerenv", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
	}}, nil
}

// parseMountinfo returns the mount points of a mountinfo table (field 5,
// octal escapes undone), without "/".
func parseMountinfo(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		p := unescapeOctal(f[4])
		if p != "/" {
			out[path.Clean(p)] = true
		}
	}
	return out, sc.Err()
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// skipped reports whether container path p is left out.
func (t *Tree) skipped(p string) bool {
	for _, s := range t.Skip {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

// host is where container path p is on this machine.
func (t *Tree) host(p string) string { return filepath.Join(t.Root, p) }

// Changes compares the tree with the image index as docker diff does: a
// path the image lacks is added (with everything beneath it), a path whose
// type, permissions, owner, size or modification time (for a symlink, its
// target; a directory's size and time are not compared) differ is
// modified, a path of the image that is gone is deleted, and a directory
// holding changes is modified itself. Sorted by path.
func (t *Tree) Changes(idx *Index) ([]proto.Change, error) {
	var out []proto.Change
	if err := t.compareDir("/", idx, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// compareDir appends the changes beneath directory p, which exists in
// both the image and the tree.
func (t *Tree) compareDir(p string, idx *Index, out *[]proto.Change) error {
	names, err := readNames(t.host(p))
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, n := range names {
		cp := path.Join(p, n)
		if t.skipped(cp) {
			continue
		}
		seen[cp] = true
		if t.Mounts[cp] {
			continue
		}
		st, err := lstat(t.host(cp))
		if errors.Is(err, os.ErrNotExist) {
			delete(seen, cp) // went away while we looked
			continue
		}
		if err != nil {
			return err
		}
		old, inImage := idx.entries[cp]
		isDir := st.Mode&syscall.S_IFMT == syscall.S_IFDIR
		switch {
		case !inImage:
			*out = append(*out, change(cp, proto.ChangeAdd, st))
			if isDir {
				if err := t.addAll(cp, out); err != nil {
					return err
				}
			}
		case old.Mode&syscall.S_IFMT != syscall.S_IFDIR && isDir:
			*out = append(*out, change(cp, proto.ChangeModify, st))
			if err := t.addAll(cp, out); err != nil {
				return err
			}
		default:
			before := len(*out)
			if differs(old, st, t.host(cp)) {
				*out = append(*out, change(cp, proto.ChangeModify, st))
			}
			if isDir {
				mark := len(*out)
				if err := t.compareDir(cp, idx, out); err != nil {
					return err
				}
				if len(*out) > mark && before == mark {
					*out = append(*out, proto.Change{Path: cp, Kind: proto.ChangeModify})
				}
			}
		}
	}
	for _, cp := range idx.children[p] {
		if !seen[cp] && !t.skipped(cp) && !t.Mounts[cp] {
			*out = append(*out, proto.Change{Path: cp, Kind: proto.ChangeDelete})
		}
	}
	return nil
}

// addAll appends everything beneath directory p as added.
func (t *Tree) addAll(p string, out *[]proto.Change) error {
	return t.each(p, func(cp string, st *syscall.Stat_t) (bool, error) {
		*out = append(*out, change(cp, proto.ChangeAdd, st))
		return st.Mode&syscall.S_IFMT == syscall.S_IFDIR && !t.Mounts[cp], nil
	})
}

// each calls fn for every path beneath directory p that is not skipped,
// in name order, and goes into the directories fn says to. A path gone
// meanwhile is passed over.
func (t *Tree) each(p string, fn func(cp string, st *syscall.Stat_t) (descend bool, err error)) error {
	names, err := readNames(t.host(p))
	if err != nil {
		return err
	}
	for _, n := range names {
		cp := path.Join(p, n)
		if t.skipped(cp) {
			continue
		}
		st, err := lstat(t.host(cp))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		descend, err := fn(cp, st)
		if err != nil {
			return err
		}
		if descend {
			if err := t.each(cp, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func change(p string, kind int, st *syscall.Stat_t) proto.Change {
	c := proto.Change{Path: p, Kind: kind}
	if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		c.Size = st.Size
	}
	return c
}

// differs compares an image entry with a file's stat. Only regular files'
// times are compared (a symlink by its target: unpackers rarely keep a
// link's own time), as docker leaves directories' times out.
func differs(old proto.FileEntry, st *syscall.Stat_t, hostPath string) bool {
	if old.Mode != st.Mode&(syscall.S_IFMT|0o7777) || old.UID != int(st.Uid) || old.GID != int(st.Gid) {
		return true
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		return old.Size != st.Size || !sameTime(old.Mtime, st.Mtim)
	case syscall.S_IFLNK:
		target, err := os.Readlink(hostPath)
		return err != nil || target != old.Link
	}
	return false
}

// sameTime compares times as docker does: equal seconds, and equal
// nanoseconds unless one side has none (a tar header may not carry them).
func sameTime(old int64, ts syscall.Timespec) bool {
	oldSec, oldNsec := old/1e9, old%1e9
	if old < 0 && oldNsec != 0 {
		oldSec, oldNsec = oldSec-1, oldNsec+1e9
	}
	return oldSec == ts.Sec && (oldNsec == ts.Nsec || oldNsec == 0 || ts.Nsec == 0)
}

func lstat(p string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	return &st, nil
}

// readNames lists a directory's entries, sorted.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}
