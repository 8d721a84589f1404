package engine

import (
	"context"
	"time"
)

// imageCacheTTL is how long an image record read by this process serves
// the start of a container of that image: a `docker run` starts right
// after it creates, so the start need not read the image again. What a
// start uses of it (its ID, config and layers) never changes for an ID;
// only its names and its removal can, and this process's own such
// changes drop the cache, another control plane's show within the TTL.
const imageCacheTTL = time.Second

// imageByID returns image id, from the cache when this process read it
// within imageCacheTTL.
func (e *Engine) imageByID(ctx context.Context, id string) (*Image, error) {
	if img, ok := e.images.Get(id); ok {
		return img, nil
	}
	gen := e.images.Gen()
	img, err := e.cfg.Store.GetImage(ctx, id)
	if err != nil {
		return nil, err
	}
	if img.ID == id {
		e.images.PutIf(gen, id, img)
	}
	return img, nil
}

// imagesChanged drops the image cache: this process stored, untagged or
// removed an image.
func (e *Engine) imagesChanged() {
	e.images.Clear()
}
