// Package testimage builds small container images for tests from the host's
// busybox-static binary (Debian package busybox-static), so no test needs
// the internet. It is test support shared by several packages' tests.
package testimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/usr/bin/busybox"

// Available reports whether the busybox-static binary is present, and why not.
func Available() (bool, string) {
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return false, fmt.Sprintf("%s not usable (apt-get install busybox-static): %v", BusyboxPath, err)
	}
	if !strings.Contains(string(out), "sh") {
		return false, BusyboxPath + " has no sh applet"
	}
	return true, ""
}

// Options shape a test image.
type Options struct {
	// Config overrides the default config (Cmd ["sh"], PATH set).
	Config *v1.Config
	// Files are extra regular files: path inside the image → content.
	Files map[string]string
	// Programs are extra executable files (mode 0755): path → content.
	Programs map[string][]byte
}

// Busybox returns a linux/amd64 image holding /bin/busybox, a symlink for
// every applet in /bin, /etc/passwd and /etc/group with root and nobody, and
// /tmp. Its config is docker.io/library/busybox's: Cmd ["sh"].
func Busybox(opts Options) (v1.Image, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	list, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mtime})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []struct {
		n string
		m int64
	}{{"bin", 0o755}, {"etc", 0o755}, {"tmp", 0o1777}, {"root", 0o700}, {"home", 0o755}, {"var", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755}} {
		if err := dir(d.n, d.m); err != nil {
			return nil, err
		}
	}
	if err := file("bin/busybox", 0o755, bin); err != nil {
		return nil, err
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for k, v := range opts.Files {
		files[strings.TrimPrefix(k, "/")] = v
	}
	for name, content := range files {
		if err := file(name, 0o644, []byte(content)); err != nil {
			return nil, err
		}
	}
	for name, content := range opts.Programs {
		if err := file(strings.TrimPrefix(name, "/"), 0o755, content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg := v1.Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}
	if opts.Config != nil {
		cfg = *opts.Config
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = "amd64"
	cf.OS = "linux"
	cf.Created = v1.Time{Time: mtime}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}
