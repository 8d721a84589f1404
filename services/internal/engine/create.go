package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// validName is docker's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CreateRequest is a container to create, as the API decoded it.
type CreateRequest struct {
	Namespace  string
	Name       string // "" picks a random name
	Config     *container.Config
	HostConfig *container.HostConfig
	// Endpoints are the create request's NetworkingConfig.EndpointsConfig:
	// settings per network name or ID (aliases, links, static address).
	Endpoints map[string]*network.EndpointSettings
	// Client names the client side the request came through (see
	// Container.Client).
	Client string
	// DockerSockets are the client's own Docker socket paths (the
	// forwarder's or the --dev unix socket, or the socket bound into the
	// container the request came from): a bind of one of them, like one
	// of /var/run/docker.sock, binds the Docker API into the container.
	DockerSockets []string
}

// Create stores a new container. It never calls the cloud for an image
// whose function exists; for a new image it starts making the function in
// the background so that start finds it ready sooner.
func (e *Engine) Create(ctx context.Context, req CreateRequest) (*Container, error) {
	if req.Config == nil || req.Config.Image == "" {
		return nil, Errorf(KindInvalid, "config cannot be empty in order to create a container")
	}
	img, recheck, err := e.imageToCreate(ctx, req.Config.Image)
	if err != nil {
		return nil, err
	}
	if recheck == nil {
		return e.create(ctx, req, img, nil)
	}
	// The image is the one the name gave this process before, read again
	// while the container is made: if the name moved meanwhile (another
	// control plane's pull, tag or rmi), the container is undone and made
	// again with what the name gives now.
	orig, err := cloneRequest(req)
	if err != nil {
		return nil, err
	}
	c, err := e.create(ctx, req, img, recheck)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, errImageMoved) {
		// A create refused for the image's sake must be the image the
		// name gives now's.
		if now, rerr := recheck(); rerr != nil || now.ID == img.ID {
			return nil, err
		}
	}
	fresh, err := e.Image(ctx, orig.Config.Image)
	if err != nil {
		return nil, err
	}
	return e.create(ctx, orig, fresh, nil)
}

// create is Create with image img; recheck, if not nil, reads the image
// again once the container is stored: if it is no longer img, the
// container is removed and create returns errImageMoved (or recheck's
// error).
func (e *Engine) create(ctx context.Context, req CreateRequest, img *Image, recheck func() (*Image, error)) (*Container, error) {
	imgGen := e.images.Gen()
	hc := req.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	if hc.LogConfig.Type == "" {
		// Output is kept like docker's default driver does (logs, --tail,
		// --since); clients such as the Python SDK read logs only for it.
		hc.LogConfig.Type = "json-file"
	}
	if hc.Runtime == "" {
		hc.Runtime = defaultRuntime
	}
	warnings, err := checkOptions(req.Config, hc)
	if err != nil {
		return nil, err
	}
	shape, err := ShapeOf(hc)
	if err != nil {
		return nil, err
	}
	if req.Name != "" {
		if err := checkName(req.Name); err != nil {
			return nil, err
		}
	}
	if err := checkConfig(req.Config, hc); err != nil {
		return nil, err
	}
	merged := mergeConfig(req.Config, img.Config)
	if err := e.checkPorts(merged, hc, req.Client); err != nil {
		return nil, err
	}
	id := randomHex(32)
	mounts, err := e.mounts(ctx, id, req, img)
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:         id,
		Client:     req.Client,
		Namespace:  req.Namespace,
		Created:    time.Now().UTC(),
		ImageRef:   req.Config.Image,
		ImageID:    img.ID,
		Config:     merged,
		HostConfig: hc,
		State:      State{Status: StatusCreated},
		Function:   e.cfg.Fleet.Key(img, shape),
		Warnings:   warnings,
		Mounts:     mounts,
	}
	if err := checkProcessSize("container", process(c)); err != nil {
		e.releaseMounts(c)
		return nil, err
	}
	if e.cfg.Networks != nil {
		if err := e.cfg.Networks.Prepare(ctx, c, req.Endpoints); err != nil {
			return nil, err
		}
	} else if m := hc.NetworkMode; m != "default" && m != "bridge" || len(req.Endpoints) > 0 || len(hc.Links) > 0 {
		return nil, Errorf(KindInvalid, "HostConfig.NetworkMode %q is not supported by this control plane: it has no network plane", m)
	}
	if c.Config.Hostname == "" {
		c.Config.Hostname = c.ID[:12]
	}
	// The function's record is read while the container is stored: its
	// start, a moment later, finds it read.
	e.cfg.Fleet.Prepare(img, shape)
	watched, created := e.watchCreated(c.Namespace, c.ID), false
	defer func() { watched(created) }()
	auto := req.Name == ""
	for attempt := 0; ; attempt++ {
		if auto {
			c.Name = randomName(attempt)
		} else {
			if err := checkName(req.Name); err != nil {
				return nil, err
			}
			c.Name = strings.TrimPrefix(req.Name, "/")
		}
		err = e.cfg.Store.CreateContainer(ctx, c)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrConflict) {
			e.releaseMounts(c)
			return nil, fmt.Errorf("create container: %w", err)
		}
		if auto && attempt < 10 {
			continue
		}
		e.releaseMounts(c)
		other, gerr := e.cfg.Store.GetContainer(ctx, c.Namespace, c.Name)
		otherID := ""
		if gerr == nil {
			otherID = other.ID
		}
		return nil, &Error{Kind: KindConflict, Err: err, Message: fmt.Sprintf(
			"Conflict. The container name \"/%s\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", c.Name, otherID)}
	}
	if recheck != nil {
		if now, err := recheck(); err != nil || now.ID != img.ID {
			e.releaseMounts(c)
			if derr := e.cfg.Store.DeleteContainer(context.WithoutCancel(ctx), c.Namespace, c.ID); derr != nil && !errors.Is(derr, ErrNotFound) {
				e.log.Error("undo the create of a container whose image moved", "container", c.ID, "err", derr)
			}
			if err != nil {
				return nil, err
			}
			return nil, errImageMoved
		}
	}
	e.images.PutIf(imgGen, img.ID, img) // its start reads it next
	e.publish(c, "create", nil)
	created = true
	return c, nil
}

// mergeConfig fills the container's config with the image's defaults the way
// docker does: env by key, entrypoint and cmd together, workdir, user, labels.
func mergeConfig(in, img *container.Config) *container.Config {
	out := *in
	if img == nil {
		img = &container.Config{}
	}
	out.Env = createEnv(in.Env, img.Env)
	if len(in.Entrypoint) == 0 {
		out.Entrypoint = img.Entrypoint
		if len(in.Cmd) == 0 {
			out.Cmd = img.Cmd
		}
	}
	if out.WorkingDir == "" {
		out.WorkingDir = img.WorkingDir
	}
	if out.User == "" {
		out.User = img.User
	}
	if out.StopSignal == "" {
		out.StopSignal = img.StopSignal
	}
	if out.Healthcheck == nil {
		out.Healthcheck = img.Healthcheck
	}
	labels := map[string]string{}
	for k, v := range img.Labels {
		labels[k] = v
	}
	for k, v := range in.Labels {
		labels[k] = v
	}
	out.Labels = labels
	out.Volumes = mergeVolumes(in.Volumes, img.Volumes)
	if len(img.ExposedPorts) > 0 && out.ExposedPorts == nil {
		out.ExposedPorts = img.ExposedPorts
	}
	return &out
}

// createEnv is docker's container environment: the user's variables as
// given, then the image's that the user did not set.
func createEnv(user, image []string) []string {
	out := UserEnvFirst(user, image)
	if !slices.ContainsFunc(out, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		out = append(out, "PATH="+defaultPath)
	}
	return out
}

// UserEnvFirst is user's variables as given, then base's that user does
// not set: how docker completes a container's (or a committed image's)
// environment from its image's (or container's).
func UserEnvFirst(user, base []string) []string {
	out := append([]string{}, user...)
	set := map[string]bool{}
	for _, kv := range user {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			out = append(out, kv)
		}
	}
	return out
}

// defaultPath is the PATH a container gets when neither it nor its image
// sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// mergeEnv overlays "K=V" entries of over on base, by key, keeping order.
func mergeEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	idx := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range base {
		add(kv)
	}
	for _, kv := range over {
		add(kv)
	}
	if _, ok := idx["PATH"]; !ok {
		out = append(out, "PATH="+defaultPath)
	}
	return out
}

var (
	nameLeft  = []string{"admiring", "bold", "brave", "clever", "eager", "elated", "focused", "gifted", "happy", "jolly", "keen", "loving", "modest", "nifty", "quirky", "serene", "sharp", "stoic", "vibrant", "zen"}
	nameRight = []string{"babbage", "curie", "darwin", "einstein", "feynman", "galileo", "hopper", "kepler", "lovelace", "meitner", "newton", "noether", "pasteur", "ritchie", "shannon", "thompson", "turing", "wozniak", "yalow", "zuse"}
)

// randomName returns a docker-style name; later attempts add a digit as docker does.
func randomName(attempt int) string {
	n := nameLeft[rand.IntN(len(nameLeft))] + "_" + nameRight[rand.IntN(len(nameRight))]
	if attempt > 0 {
		n += fmt.Sprint(rand.IntN(10))
	}
	return n
}
