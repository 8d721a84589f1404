package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// libDir is where a dynamically linked agent's loader and libraries go.
const libDir = "/.sockerless/lib"

// libSearch are the directories a dynamic agent's libraries are found in.
var libSearch = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// agentLayer is the layer added to every image, and the entrypoint that
// starts the agent from it.
type agentLayer struct {
	layer      v1.Layer
	entrypoint []string
	sum        string // hex SHA-256 of everything in the layer
}

// buildAgentLayer packs the agent binary. The agent must run in any image,
// so a static binary (CGO_ENABLED=0) goes in alone; a dynamically linked
// one (a plain `go build` where cgo is on) brings its loader and libraries
// along and is started through that loader, never the image's own libc.
func buildAgentLayer(path string) (*agentLayer, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent binary: %w", err)
	}
	files := map[string][]byte{AgentPath: bin}
	entry := []string{AgentPath}
	interp, libs, err := dynamicDeps(path)
	if err != nil {
		return nil, fmt.Errorf("agent binary %s: %w", path, err)
	}
	if interp != "" {
		for _, l := range append([]string{interp}, libs...) {
			data, err := os.ReadFile(l)
			if err != nil {
				return nil, fmt.Errorf("agent library %s: %w", l, err)
			}
			files[libDir+"/"+filepath.Base(l)] = data
		}
		entry = []string{libDir + "/" + filepath.Base(interp), "--library-path", libDir, AgentPath}
	}
	data, sum, err := tarFiles(files)
	if err != nil {
		return nil, fmt.Errorf("pack agent layer: %w", err)
	}
	// Compressed once here and kept: a layer opened on the plain tar would
	// gzip its megabytes again for its digest and for every push.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("compress agent layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress agent layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	})
	if err != nil {
		return nil, fmt.Errorf("agent layer: %w", err)
	}
	return &agentLayer{layer: layer, entrypoint: entry, sum: sum}, nil
}

// dynamicDeps returns a binary's ELF interpreter and the libraries it needs
// (transitively), or "" for a static binary.
func dynamicDeps(path string) (string, []string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return "", nil, err
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		return "", nil, nil
	}
	seen := map[string]bool{}
	var libs []string
	var walk func(*elf.File) error
	walk = func(f *elf.File) error {
		needed, err := f.ImportedLibraries()
		if err != nil {
			return err
		}
		for _, n := range needed {
			if seen[n] {
				continue
			}
			seen[n] = true
			p := findLib(n)
			if p == "" {
				return fmt.Errorf("library %s not found", n)
			}
			libs = append(libs, p)
			lf, err := elf.Open(p)
			if err != nil {
				return err
			}
			err = walk(lf)
			lf.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(f); err != nil {
		return "", nil, err
	}
	return interp, libs, nil
}

func findLib(name string) string {
	for _, d := range libSearch {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// tarFiles makes a layer tar of files (absolute paths, mode 0755) with
// their directories, and its SHA-256.
func tarFiles(files map[string][]byte) ([]byte, string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(0, 0)
	dirs := map[string]bool{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rel := strings.TrimPrefix(n, "/")
		for d := filepath.Dir(rel); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mt}); err != nil {
			return nil, "", err
		}
	}
	for _, n := range names {
		data := files[n]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(n, "/"), Mode: 0o755, Size: int64(len(data)), ModTime: mt}); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}
