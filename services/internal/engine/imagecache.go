package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// imagesChanged drops the image caches: this process stored, untagged or
// removed an image.
func (e *Engine) imagesChanged() {
	e.images.Clear()
	e.named.Clear()
}

// namedTTL bounds how long the image a name gave serves creates, which
// read the name again meanwhile (imageToCreate): it only bounds memory.
const namedTTL = time.Minute

// recheckTimeout bounds imageToCreate's lookup made again.
const recheckTimeout = 30 * time.Second

// errImageMoved is a create undone because its image's name gives
// another image now.
var errImageMoved = errors.New("the image's name moved while the container was made")

// imageToCreate returns the image ref names, to create a container of.
// When ref gave this process an image lately it returns that image at
// once, with recheck, which waits for the same lookup made again in the
// background: the create need not wait for the store before it makes the
// container, only before it answers.
func (e *Engine) imageToCreate(ctx context.Context, ref string) (img *Image, recheck func() (*Image, error), err error) {
	gen := e.named.Gen()
	lookup := func(ctx context.Context) (*Image, error) {
		img, err := e.Image(ctx, ref)
		if err == nil {
			e.named.PutIf(gen, ref, img)
		}
		return img, err
	}
	if img, ok := e.named.Get(ref); ok && visible(ctx, img) && tagVisible(ctx, img, ref) {
		var now *Image
		var nerr error
		done := make(chan struct{})
		// As the create's store write, the lookup does not end with the
		// client's request: a create that went through stays.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recheckTimeout)
		go func() {
			defer close(done)
			defer cancel()
			now, nerr = lookup(lctx)
		}()
		return img, func() (*Image, error) {
			<-done
			return now, nerr
		}, nil
	}
	img, err = lookup(ctx)
	return img, nil, err
}

// cloneRequest deep-copies what a create changes of its request.
func cloneRequest(req CreateRequest) (CreateRequest, error) {
	out := req
	for _, v := range []struct{ from, to any }{
		{req.Config, &out.Config}, {req.HostConfig, &out.HostConfig}, {req.Endpoints, &out.Endpoints},
	} {
		b, err := json.Marshal(v.from)
		if err != nil {
			return out, fmt.Errorf("copy the create request: %w", err)
		}
		if err := json.Unmarshal(b, v.to); err != nil {
			return out, fmt.Errorf("copy the create request: %w", err)
		}
	}
	return out, nil
}
