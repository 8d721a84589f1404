// Package gcs is volumes.Data on a Cloud Storage bucket, through the
// official client (cloud.google.com/go/storage): the bucket Cloud Run
// mounts into every function (gcsfuse) holds a volume's files as objects
// under its directory, so deleting a volume deletes those objects and its
// size is theirs.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/sockerless/sockerless/services/internal/volumes"
)

// deleteWorkers bounds the object deletions in flight.
const deleteWorkers = 16

// objects is the part of the client the adapter uses.
type objects interface {
	list(ctx context.Context, prefix string, each func(name string, size int64) error) error
	delete(ctx context.Context, name string) error
}

// Data is volumes.Data on one bucket.
type Data struct {
	bucket string
	obj    objects
	close  func() error
}

var _ volumes.Data = (*Data)(nil)

// Open connects to bucket; opts may point the client elsewhere (gcpsim:
// option.WithEndpoint and option.WithoutAuthentication).
func Open(ctx context.Context, bucket string, opts ...option.ClientOption) (*Data, error) {
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloud storage client: %w", err)
	}
	return &Data{bucket: bucket, obj: client{c.Bucket(bucket)}, close: c.Close}, nil
}

// EnsureBucket creates the bucket in project if it does not exist (the
// dev stack's; Terraform makes a deployment's).
func EnsureBucket(ctx context.Context, project, bucket string, opts ...option.ClientOption) error {
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return fmt.Errorf("cloud storage client: %w", err)
	}
	defer c.Close()
	b := c.Bucket(bucket)
	if _, err := b.Attrs(ctx); err == nil {
		return nil
	} else if !errors.Is(err, storage.ErrBucketNotExist) {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	if err := b.Create(ctx, project, nil); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// Close releases the client.
func (d *Data) Close() error { return d.close() }

// Remove deletes every object under dir: files first, then the directory
// placeholders gcsfuse made, deepest first.
func (d *Data) Remove(ctx context.Context, dir string) error {
	var files, dirs []string
	err := d.obj.list(ctx, prefix(dir), func(name string, _ int64) error {
		if strings.HasSuffix(name, "/") {
			dirs = append(dirs, name)
		} else {
			files = append(files, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	if err := d.deleteAll(ctx, files); err != nil {
		return err
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, name := range dirs {
		if err := d.obj.delete(ctx, name); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	return nil
}

// deleteAll deletes names with deleteWorkers requests in flight.
func (d *Data) deleteAll(ctx context.Context, names []string) error {
	ch := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range min(deleteWorkers, len(names)) {
		wg.Go(func() {
			for name := range ch {
				if err := d.obj.delete(ctx, name); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("delete %s: %w", name, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, n := range names {
		ch <- n
	}
	close(ch)
	wg.Wait()
	return first
}

// Size sums the sizes of the objects under dir.
func (d *Data) Size(ctx context.Context, dir string) (int64, error) {
	var n int64
	err := d.obj.list(ctx, prefix(dir), func(_ string, size int64) error {
		n += size
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return n, nil
}

func prefix(dir string) string { return strings.TrimSuffix(dir, "/") + "/" }

// client is objects on the real client.
type client struct{ b *storage.BucketHandle }

func (c client) list(ctx context.Context, prefix string, each func(string, int64) error) error {
	q := &storage.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size"}); err != nil {
		return err
	}
	it := c.b.Objects(ctx, q)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := each(a.Name, a.Size); err != nil {
			return err
		}
	}
}

func (c client) delete(ctx context.Context, name string) error {
	return c.b.Object(name).Delete(ctx)
}
