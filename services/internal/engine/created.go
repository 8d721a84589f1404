package engine

// docker cp of a container that has never run. It has no function instance
// (and gets none: an invocation just to copy files would be billed and
// would have to stay up until the start), so:
//
//   - PUT keeps the tar as a PendingUpload: streamed into the store in
//     chunks (in the container's log, under a stream of its own), never held
//     in memory, and extracted by the agent when the container starts,
//     before its process runs; several uploads apply in order.
//   - HEAD and GET answer from the image's files (ImageFiles) with the
//     pending uploads laid over them in order. This is the filesystem the
//     process will see, and it needs no instance. It is computed, not read:
//     a view of every path's tar header is built from one pass over the
//     image and one over each upload, then the requested subtree is copied
//     from those same tars. Reading the image's layers again per request is
//     fine for a rare operation on small trees.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// Upload chunking: chunks of one data frame's size, appended in batches.
const (
	uploadChunk = proto.MaxPayload
	uploadBatch = 32
)

// neverStarted says whether c has never run: no instance holds its files.
func neverStarted(c *Container) bool { return c.Run == 0 && c.Instance == "" }

// viewEntry is one path of a never-started container's filesystem.
type viewEntry struct {
	hdr *tar.Header // Name is the clean absolute path
	src int         // srcImage, srcMade, or i: PendingUploads[i]
}

// Sources of a view entry that are not uploads.
const (
	srcImage = -1
	srcMade  = -2 // a missing parent directory, made as extraction makes it
)

// fsView maps clean absolute paths to the entry that wins there.
type fsView map[string]*viewEntry

// createdFiles is where a never-started container's files come from.
type createdFiles struct {
	e   *Engine
	c   *Container
	img *Image
	fs  ImageFiles
}

// createdFilesOf prepares reading c's files from its image and uploads.
func (e *Engine) createdFilesOf(ctx context.Context, c *Container) (*createdFiles, error) {
	fs, ok := e.cfg.Images.(ImageFiles)
	if !ok {
		return nil, Errorf(KindNotImplemented, "container %s has not been started: this control plane cannot read its image's files", c.ID)
	}
	img, err := e.cfg.Store.GetImage(ctx, c.ImageID)
	if err != nil {
		return nil, fmt.Errorf("image %s of %s: %w", c.ImageID, c.ID, err)
	}
	return &createdFiles{e: e, c: c, img: img, fs: fs}, nil
}

// image opens the image's flattened filesystem.
func (f *createdFiles) image(ctx context.Context) (io.ReadCloser, error) {
	rc, err := f.fs.Filesystem(ctx, f.img)
	if err != nil {
		return nil, fmt.Errorf("read files of image %s: %w", f.img.ID, err)
	}
	return rc, nil
}

// cleanAbs makes a tar entry name or a user path a clean absolute path.
func cleanAbs(p string) string { return path.Clean("/" + p) }

// view builds the filesystem view: the image, then every upload in order.
func (f *createdFiles) view(ctx context.Context) (fsView, error) {
	v := fsView{"/": {hdr: &tar.Header{Name: "/", Typeflag: tar.TypeDir, Mode: 0o755}, src: srcMade}}
	rc, err := f.image(ctx)
	if err != nil {
		return nil, err
	}
	err = scanTar(rc, func(h *tar.Header, _ io.Reader) error {
		v.put(cleanAbs(h.Name), h, srcImage)
		return nil
	})
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read files of image %s: %w", f.img.ID, err)
	}
	// The container's volume and tmpfs destinations exist, as docker makes
	// them at create: an upload into one lands in the mount at the start.
	for _, m := range f.c.Mounts {
		if d := cleanAbs(m.Destination); v[d] == nil {
			v.put(d, &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}, srcMade)
		}
	}
	for i, u := range f.c.PendingUploads {
		err := scanTar(f.e.uploadReader(ctx, f.c, u), func(h *tar.Header, _ io.Reader) error {
			v.put(path.Join(u.Dir, cleanAbs(h.Name)), h, i)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read upload %d of %s: %w", i, f.c.ID, err)
		}
	}
	return v, nil
}

// put records h at p from src, as extracting it there would: missing
// parents appear as directories, and a non-directory replaces a whole
// subtree.
func (v fsView) put(p string, h *tar.Header, src int) {
	h = copyHeader(h)
	h.Name = p
	if old := v[p]; old != nil && old.hdr.Typeflag == tar.TypeDir && h.Typeflag != tar.TypeDir {
		for k := range v {
			if strings.HasPrefix(k, p+"/") {
				delete(v, k)
			}
		}
	}
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		if v[d] != nil {
			break
		}
		v[d] = &viewEntry{hdr: &tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Now()}, src: srcMade}
	}
	v[p] = &viewEntry{hdr: h, src: src}
}

func copyHeader(h *tar.Header) *tar.Header {
	c := *h
	c.PAXRecords, c.Xattrs = nil, nil //nolint:staticcheck // only the fields docker cp keeps
	return &c
}

// resolve follows symlinks in p's directories (and in its last element if
// final), as the kernel would inside the container. Missing paths resolve
// to themselves.
func (v fsView) resolve(p string, final bool) string {
	p = cleanAbs(p)
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
		cur := "/"
		changed := false
		for i, part := range parts {
			if part == "" {
				continue
			}
			next := path.Join(cur, part)
			e := v[next]
			if e != nil && e.hdr.Typeflag == tar.TypeSymlink && (i < len(parts)-1 || final) {
				target := e.hdr.Linkname
				if !path.IsAbs(target) {
					target = path.Join(cur, target)
				}
				p = path.Join(append([]string{cleanAbs(target)}, parts[i+1:]...)...)
				changed = true
				break
			}
			cur = next
		}
		if !changed {
			return p
		}
	}
	return p
}

// scanTar calls fn for every entry of the tar stream r, with its content.
func scanTar(r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// stat describes the entry at p (its last element not followed).
func (v fsView) stat(p string) (*viewEntry, string, bool) {
	dir, base := path.Split(cleanAbs(p))
	full := path.Join(v.resolve(dir, true), base)
	e := v[full]
	return e, full, e != nil
}

func pathStatOf(name string, h *tar.Header) PathStat {
	st := PathStat{Name: name, Size: h.Size, Mode: h.FileInfo().Mode(), Mtime: h.ModTime.UTC()}
	if h.Typeflag == tar.TypeSymlink {
		st.LinkTarget = h.Linkname
	}
	return st
}

// createdStat is ArchiveStat of a never-started container.
func (e *Engine) createdStat(ctx context.Context, c *Container, ref, p string) (PathStat, error) {
	f, err := e.createdFilesOf(ctx, c)
	if err != nil {
		return PathStat{}, err
	}
	v, err := f.view(ctx)
	if err != nil {
		return PathStat{}, err
	}
	ent, _, ok := v.stat(p)
	if !ok {
		return PathStat{}, archiveError(proto.ArchiveNotFound, "", p, ref)
	}
	return pathStatOf(path.Base(p), ent.hdr), nil
}

// createdGet is ArchiveGet of a never-started container: p's subtree as a
// tar whose entries start with p's base name, as the agent writes it.
func (e *Engine) createdGet(ctx context.Context, c *Container, ref, p string, header func(PathStat), w io.Writer) error {
	f, err := e.createdFilesOf(ctx, c)
	if err != nil {
		return err
	}
	v, err := f.view(ctx)
	if err != nil {
		return err
	}
	ent, root, ok := v.stat(p)
	if !ok {
		return archiveError(proto.ArchiveNotFound, "", p, ref)
	}
	header(pathStatOf(path.Base(p), ent.hdr))
	base := path.Base(cleanAbs(p))
	// outName is the entry name of full path k in the answer ("" if k is
	// not in p's subtree).
	outName := func(k string) string {
		switch {
		case k == root:
			return base
		case root == "/":
			return strings.TrimPrefix(k, "/")
		case strings.HasPrefix(k, root+"/"):
			return base + strings.TrimPrefix(k, root)
		}
		return ""
	}
	tw := tar.NewWriter(w)
	emit := func(src int, k string, h *tar.Header, body io.Reader) error {
		ve := v[k]
		name := outName(k)
		if ve == nil || ve.src != src || name == "" {
			return nil
		}
		out := copyHeader(h)
		out.Name = name
		if out.Typeflag == tar.TypeDir {
			out.Name += "/"
		}
		if out.Typeflag == tar.TypeLink {
			if n := outName(cleanAbs(h.Linkname)); n != "" {
				out.Linkname = n
			}
		}
		out.Uname, out.Gname = "", ""
		if err := tw.WriteHeader(out); err != nil {
			return err
		}
		if out.Typeflag == tar.TypeReg && body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return err
			}
		}
		return nil
	}
	// Directories the view made up (missing parents) come first, parents
	// before children.
	var made []string
	for k, ve := range v {
		if ve.src == srcMade && outName(k) != "" {
			made = append(made, k)
		}
	}
	sort.Strings(made)
	for _, k := range made {
		if err := emit(srcMade, k, v[k].hdr, nil); err != nil {
			return err
		}
	}
	rc, err := f.image(ctx)
	if err != nil {
		return err
	}
	err = scanTar(rc, func(h *tar.Header, body io.Reader) error {
		return emit(srcImage, cleanAbs(h.Name), h, body)
	})
	rc.Close()
	if err != nil {
		return fmt.Errorf("copy %s out of %s: %w", p, c.ID, err)
	}
	for i, u := range c.PendingUploads {
		err := scanTar(e.uploadReader(ctx, c, u), func(h *tar.Header, body io.Reader) error {
			return emit(i, path.Join(u.Dir, cleanAbs(h.Name)), h, body)
		})
		if err != nil {
			return fmt.Errorf("copy %s out of %s: %w", p, c.ID, err)
		}
	}
	return tw.Close()
}

// createdPut is ArchivePut of a never-started container: it checks the
// destination, stores the tar in chunks and records it as pending.
func (e *Engine) createdPut(ctx context.Context, c *Container, ref, p string, r io.Reader) error {
	f, err := e.createdFilesOf(ctx, c)
	if err != nil {
		return err
	}
	v, err := f.view(ctx)
	if err != nil {
		return err
	}
	dir := v.resolve(p, true)
	ent := v[dir]
	if ent == nil {
		return archiveError(proto.ArchiveNotFound, "", p, ref)
	}
	if ent.hdr.Typeflag != tar.TypeDir {
		return archiveError(proto.ArchiveNotDir, "", p, ref)
	}
	var stream uint32
	_, err = e.cfg.Store.UpdateContainer(ctx, c.Namespace, c.ID, func(c *Container) error {
		if c.NextStream < proto.FirstExecStream {
			c.NextStream = proto.FirstExecStream
		}
		stream = c.NextStream
		c.NextStream++
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy into %s: %w", c.ID, err)
	}
	u := PendingUpload{Dir: dir, Stream: stream}
	buf := make([]byte, uploadBatch*uploadChunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			var batch []LogEntry
			now := time.Now().UTC()
			for off := 0; off < n; off += uploadChunk {
				end := min(off+uploadChunk, n)
				batch = append(batch, LogEntry{Stream: int(stream), Time: now, Data: buf[off:end]})
			}
			stored, err := e.cfg.Store.AppendLogs(ctx, c.Namespace, c.ID, batch, nil)
			if err != nil {
				return fmt.Errorf("copy into %s: store upload: %w", c.ID, err)
			}
			if u.First == 0 {
				u.First = stored[0].Seq
			}
			u.Last = stored[len(stored)-1].Seq
			u.Size += int64(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("copy into %s: read upload: %w", c.ID, rerr)
		}
	}
	// Checked now, as extracting would check it at the start: an upload
	// that cannot be extracted is refused and the container stays usable.
	if err := checkUpload(v, e.uploadReader(ctx, c, u), dir); err != nil {
		return err
	}
	_, err = e.cfg.Store.UpdateContainer(ctx, c.Namespace, c.ID, func(c *Container) error {
		if !neverStarted(c) {
			return Errorf(KindConflict, "container %s was started while the copy into it was uploaded; copy again", c.ID)
		}
		c.PendingUploads = append(c.PendingUploads, u)
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy into %s: %w", c.ID, err)
	}
	return nil
}

// uploadReader reads a pending upload's tar back from the store, a batch
// of chunks at a time.
func (e *Engine) uploadReader(ctx context.Context, c *Container, u PendingUpload) io.Reader {
	return &uploadStream{ctx: ctx, e: e, ns: c.Namespace, id: c.ID, u: u, cursor: u.First - 1}
}

type uploadStream struct {
	ctx    context.Context
	e      *Engine
	ns, id string
	u      PendingUpload
	cursor uint64 // last log seq read
	buf    [][]byte
}

func (s *uploadStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.u.First == 0 || s.cursor >= s.u.Last {
			return 0, io.EOF
		}
		batch, err := s.e.cfg.Store.ReadLogs(s.ctx, s.ns, s.id, s.cursor, uploadBatch)
		if err != nil {
			return 0, fmt.Errorf("read upload of %s: %w", s.id, err)
		}
		if len(batch) == 0 {
			return 0, fmt.Errorf("read upload of %s: chunks after %d missing", s.id, s.cursor)
		}
		for _, le := range batch {
			if le.Seq > s.u.Last {
				s.cursor = s.u.Last
				break
			}
			s.cursor = le.Seq
			if uint32(le.Stream) == s.u.Stream && len(le.Data) > 0 {
				s.buf = append(s.buf, le.Data)
			}
		}
	}
	n := copy(p, s.buf[0])
	if n == len(s.buf[0]) {
		s.buf[0] = nil
		s.buf = s.buf[1:]
	} else {
		s.buf[0] = s.buf[0][n:]
	}
	return n, nil
}

// applyUploads extracts c's pending uploads through its connected agent, in
// order, before its first process starts; each one is dropped once applied.
func (e *Engine) applyUploads(ctx context.Context, c *Container) error {
	for _, u := range c.PendingUploads {
		code, msg, err := e.archive(ctx, c.Namespace, c.ID, "put", u.Dir, e.uploadReader(ctx, c, u), io.Discard)
		if err == nil {
			err = archiveError(code, msg, u.Dir, c.ID)
		}
		if err != nil {
			return fmt.Errorf("apply docker cp into %s of %s: %w", u.Dir, c.ID, err)
		}
		_, err = e.cfg.Store.UpdateContainer(context.WithoutCancel(ctx), c.Namespace, c.ID, func(c *Container) error {
			for i, p := range c.PendingUploads {
				if p.Stream == u.Stream {
					c.PendingUploads = append(c.PendingUploads[:i], c.PendingUploads[i+1:]...)
					break
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("record docker cp into %s of %s as applied: %w", u.Dir, c.ID, err)
		}
	}
	return nil
}

// checkUpload reads an upload's tar as the agent will extract it into dir
// over the view v: it must be a tar, hard links must name a file that is
// there by then, and no entry may lie beneath a symlink the upload made.
func checkUpload(v fsView, r io.Reader, dir string) error {
	seen := map[string]bool{}
	links := map[string]bool{}
	err := scanTar(r, func(h *tar.Header, _ io.Reader) error {
		p := path.Join(dir, cleanAbs(h.Name))
		for d := path.Dir(p); len(d) > len(dir); d = path.Dir(d) {
			if links[d] {
				return fmt.Errorf("entry %q is beneath the symlink %q made by the same archive", h.Name, d)
			}
		}
		if h.Typeflag == tar.TypeLink {
			src := path.Join(dir, cleanAbs(h.Linkname))
			if !seen[src] && v[v.resolve(src, false)] == nil {
				return fmt.Errorf("link %s %s: no such file or directory", src, p)
			}
		}
		seen[p] = true
		links[p] = h.Typeflag == tar.TypeSymlink
		return nil
	})
	if err != nil {
		return badTar(err)
	}
	return nil
}
