package dockerapi

import (
	"net/http"
	"sync"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// diskUsage is GET /system/df's answer in the shape API versions before
// 1.52 have (moby's current types hold only the newer one).
type diskUsage struct {
	LayersSize  int64
	Images      *[]dfImage            `json:",omitempty"`
	Containers  *[]container.Summary  `json:",omitempty"`
	Volumes     *[]*volume.Volume     `json:",omitempty"`
	BuildCache  *[]*build.CacheRecord `json:",omitempty"`
	BuilderSize int64                 `json:",omitempty"`
}

// dfImage is an image in system df; clients before API 1.44 read
// VirtualSize.
type dfImage struct {
	image.Summary
	VirtualSize *int64 `json:",omitempty"`
}

// containerSizers bounds the instances asked for their sizes at once.
const containerSizers = 4

// getSystemDF: GET /system/df?type= (docker system df [-v]). Build
// cache is always empty: Sockerless does not build.
func (s *Server) getSystemDF(w http.ResponseWriter, r *http.Request) error {
	ctx, ns := r.Context(), s.ns(r)
	want := map[string]bool{}
	for _, t := range r.URL.Query()["type"] {
		switch t {
		case "container", "image", "volume", "build-cache":
			want[t] = true
		default:
			return engine.Errorf(engine.KindInvalid, "unknown object type: %s", t)
		}
	}
	all := len(want) == 0
	var du diskUsage
	if all || want["image"] {
		imgs, layers, err := s.cfg.Images.Usage(ctx, ns)
		if err != nil {
			return err
		}
		out := make([]dfImage, 0, len(imgs))
		for _, sm := range imgs {
			di := dfImage{Summary: sm}
			if versionLess(requestVersion(r), "1.44") {
				size := sm.Size
				di.VirtualSize = &size
			}
			out = append(out, di)
		}
		du.Images, du.LayersSize = &out, layers
	}
	if all || want["container"] {
		cs, err := s.containerUsage(r)
		if err != nil {
			return err
		}
		du.Containers = &cs
	}
	if all || want["volume"] {
		vs, err := s.volumeUsage(ctx, ns)
		if err != nil {
			return err
		}
		du.Volumes = &vs
	}
	if all || want["build-cache"] {
		du.BuildCache = &[]*build.CacheRecord{}
	}
	return writeJSON(w, http.StatusOK, du)
}

// containerUsage lists the namespace's containers with the size of
// their changed files (asked of each live instance) and of their image.
func (s *Server) containerUsage(r *http.Request) ([]container.Summary, error) {
	ctx, ns := r.Context(), s.ns(r)
	cs, err := s.e.List(ctx, ns, engine.ListOptions{All: true})
	if err != nil {
		return nil, err
	}
	imgSize := map[string]int64{}
	if imgs, err := s.e.Images(ctx); err == nil {
		for _, img := range imgs {
			imgSize[img.ID] = img.Size
		}
	}
	out := make([]container.Summary, len(cs))
	sem := make(chan struct{}, containerSizers)
	var wg sync.WaitGroup
	for i, c := range cs {
		out[i] = summary(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i].SizeRw = s.cfg.Images.SizeRw(ctx, ns, c)
			out[i].SizeRootFs = imgSize[c.ImageID] + out[i].SizeRw
		}()
	}
	wg.Wait()
	return out, nil
}
