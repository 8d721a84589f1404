// Package localfs is volumes.Data on a directory the control plane has
// mounted: an NFS share (Filestore) mounted into the control plane's own
// Cloud Run service at the same export the functions mount.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sockerless/sockerless/services/internal/volumes"
)

// Data is volumes.Data under Root.
type Data struct{ Root string }

var _ volumes.Data = Data{}

func (d Data) path(dir string) (string, error) {
	clean := filepath.Clean("/" + dir)
	if clean == "/" || strings.Contains(dir, "..") {
		return "", fmt.Errorf("volume directory %q is not below the root", dir)
	}
	return filepath.Join(d.Root, clean), nil
}

// Remove deletes dir and everything in it.
func (d Data) Remove(ctx context.Context, dir string) error {
	p, err := d.path(dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// Size sums the sizes of the regular files under dir.
func (d Data) Size(ctx context.Context, dir string) (int64, error) {
	p, err := d.path(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	err = filepath.WalkDir(p, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return n, nil
}
