package dockerapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/go-chi/chi/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
)

// postContainersCreate: POST /containers/create?name= (docker create).
func (s *Server) postContainersCreate(w http.ResponseWriter, r *http.Request) error {
	var req createBody
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	endpoints, err := req.endpoints()
	if err != nil {
		return err
	}
	c, err := s.e.Create(r.Context(), engine.CreateRequest{
		Namespace:  s.ns(r),
		Name:       r.URL.Query().Get("name"),
		Config:     req.Config,
		HostConfig: req.HostConfig,
		Endpoints:  endpoints,
		Client:     s.client(r),

		DockerSockets: s.dockerSockets(r),
	})
	if err != nil {
		return err
	}
	warnings := c.Warnings
	if warnings == nil {
		warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: warnings})
}

// getContainersJSON: GET /containers/json (docker ps).
func (s *Server) getContainersJSON(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	cs, err := s.e.List(r.Context(), s.ns(r), engine.ListOptions{All: boolParam(r, "all"), Limit: limit, Filters: f})
	if err != nil {
		return err
	}
	// A linked container is also named by its links, as with docker:
	// "/parent/alias" (found among the containers listed).
	linkNames := map[string][]string{}
	for _, c := range cs {
		if c.HostConfig == nil {
			continue
		}
		for _, l := range c.HostConfig.Links {
			name, alias := netplane.SplitLink(l)
			linkNames[name] = append(linkNames[name], "/"+c.Name+"/"+alias)
		}
	}
	out := make([]container.Summary, 0, len(cs))
	for _, c := range cs {
		sm := summary(c)
		sm.Names = append(sm.Names, linkNames[c.Name]...)
		if sm.NetworkSettings.Networks, err = s.networksOf(r, c); err != nil {
			return err
		}
		out = append(out, sm)
	}
	return writeJSON(w, http.StatusOK, out)
}

func summary(c *engine.Container) container.Summary {
	sm := container.Summary{
		ID:              c.ID,
		Names:           []string{"/" + c.Name},
		Image:           c.ImageRef,
		ImageID:         c.ImageID,
		Command:         command(c),
		Created:         c.Created.Unix(),
		Ports:           engine.PortSummaries(c),
		Labels:          c.Config.Labels,
		State:           container.ContainerState(c.State.Status),
		Status:          statusText(c, time.Now()),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}},
		Mounts:          engine.MountPoints(c),
	}
	if h := c.State.Health; h != nil {
		sm.Health = &container.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	}
	sm.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	return sm
}

func command(c *engine.Container) string {
	return strings.Join(append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...), " ")
}

// statusText is docker ps's STATUS column.
func statusText(c *engine.Container, now time.Time) string {
	st := c.State
	switch st.Status {
	case engine.StatusRunning:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + healthText(st.Health)
	case engine.StatusPaused:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + " (Paused)"
	case engine.StatusExited:
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case engine.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case engine.StatusCreated:
		return "Created"
	case engine.StatusRemoving:
		return "Removal In Progress"
	case engine.StatusDead:
		return "Dead"
	}
	return st.Status
}

// healthText is docker ps's health suffix.
func healthText(h *container.Health) string {
	if h == nil {
		return ""
	}
	if h.Status == container.Starting {
		return " (health: starting)"
	}
	return " (" + string(h.Status) + ")"
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// getContainersJSONByID: GET /containers/{id}/json (docker inspect).
func (s *Server) getContainersJSONByID(w http.ResponseWriter, r *http.Request) error {
	c, err := s.e.Container(r.Context(), s.ns(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	in := inspect(c)
	withCost(&in, c, s.e.ContainerCost(c, time.Now()))
	resp, err := s.withNetworks(r, c, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// createBody is container create's body, with the MAC address that API
// versions before 1.44 send in Config (moby's types no longer have it).
type createBody struct {
	container.CreateRequest
	MacAddress string `json:"MacAddress,omitempty"`
}

// endpoints are the create request's endpoint settings, with a legacy
// Config.MacAddress moved to the endpoint of the container's network, as
// Docker 1.44+ daemons do.
func (b *createBody) endpoints() (map[string]*network.EndpointSettings, error) {
	eps := endpointsConfig(b.NetworkingConfig)
	if b.MacAddress == "" {
		return eps, nil
	}
	hw, err := net.ParseMAC(b.MacAddress)
	if err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "invalid MAC address: %s", b.MacAddress)
	}
	mode := "bridge"
	if b.HostConfig != nil {
		if m := string(b.HostConfig.NetworkMode); m != "" && m != network.NetworkDefault {
			mode = m
		}
	}
	out := map[string]*network.EndpointSettings{}
	for k, v := range eps {
		out[k] = v
	}
	es := out[mode]
	if es == nil {
		es = &network.EndpointSettings{}
	} else {
		es = es.Copy()
	}
	if len(es.MacAddress) == 0 {
		es.MacAddress = network.HardwareAddr(hw)
	}
	out[mode] = es
	return out, nil
}

// CostLabel is the label docker inspect shows a container's cost in, once
// it has run: JSON {"vcpuSeconds","gibSeconds","invocations","usd"} (see
// engine.Cost). It is not stored: filters and docker ps do not see it.
const CostLabel = "sockerless.cost"

// withCost adds the cost label to an inspect answer of c.
func withCost(in *container.InspectResponse, c *engine.Container, cost engine.Cost) {
	if c.Usage.Invocations == 0 || in.Config == nil {
		return
	}
	b, err := json.Marshal(cost)
	if err != nil {
		return
	}
	cfg := *in.Config
	cfg.Labels = maps.Clone(cfg.Labels)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[CostLabel] = string(b)
	in.Config = &cfg
}

func endpointsConfig(nc *network.NetworkingConfig) map[string]*network.EndpointSettings {
	if nc == nil {
		return nil
	}
	return nc.EndpointsConfig
}

func inspect(c *engine.Container) container.InspectResponse {
	st := c.State
	args := append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...)
	path := ""
	if len(args) > 0 {
		path, args = args[0], args[1:]
	}
	return container.InspectResponse{
		ID:      c.ID,
		Created: timeString(c.Created),
		Path:    path,
		Args:    args,
		State: &container.State{
			Status:     container.ContainerState(st.Status),
			Running:    st.Status == engine.StatusRunning || st.Status == engine.StatusPaused || st.Status == engine.StatusRestarting,
			Paused:     st.Status == engine.StatusPaused,
			Restarting: st.Status == engine.StatusRestarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Status == engine.StatusDead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  timeString(st.StartedAt),
			FinishedAt: timeString(st.FinishedAt),
			Health:     st.Health,
		},
		Image:        c.ImageID,
		Name:         "/" + c.Name,
		RestartCount: c.RestartCount,
		Driver:       "cloud-run-functions",
		GraphDriver:  graphDriver(c),
		Platform:     "linux",
		ExecIDs:      runningExecs(c),
		HostConfig:   hostConfigShown(c),
		Mounts:       engine.MountPoints(c),
		Config:       c.Config,
		NetworkSettings: &container.NetworkSettings{
			Ports:    engine.PortsShown(c),
			Networks: map[string]*network.EndpointSettings{},
		},
	}
}

// hostConfigShown is c's HostConfig as docker inspect shows it: links as
// "/name:/container/alias".
func hostConfigShown(c *engine.Container) *container.HostConfig {
	hc := c.HostConfig
	if hc == nil || len(hc.Links) == 0 {
		return hc
	}
	out := *hc
	out.Links = make([]string, 0, len(hc.Links))
	for _, l := range hc.Links {
		name, alias := netplane.SplitLink(l)
		out.Links = append(out.Links, "/"+name+":/"+c.Name+"/"+alias)
	}
	return &out
}

// postContainersStart: POST /containers/{id}/start.
func (s *Server) postContainersStart(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Start(r.Context(), s.ns(r), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainersStop: POST /containers/{id}/stop?t=&signal=.
func (s *Server) postContainersStop(w http.ResponseWriter, r *http.Request) error {
	timeout, err := timeoutParam(r)
	if err != nil {
		return err
	}
	if err := s.e.Stop(r.Context(), s.ns(r), chi.URLParam(r, "id"), timeout, r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainersKill: POST /containers/{id}/kill?signal=.
func (s *Server) postContainersKill(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Kill(r.Context(), s.ns(r), chi.URLParam(r, "id"), r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainersWait: POST /containers/{id}/wait?condition=. Headers go out
// at once (clients know the wait is registered), the body at the end.
func (s *Server) postContainersWait(w http.ResponseWriter, r *http.Request) error {
	headersSent := false
	res, err := s.e.Wait(r.Context(), s.ns(r), chi.URLParam(r, "id"), r.URL.Query().Get("condition"), func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		headersSent = true
	})
	resp := container.WaitResponse{StatusCode: int64(res.StatusCode)}
	if err != nil {
		if !headersSent {
			return err
		}
		resp.Error = &container.WaitExitError{Message: err.Error()}
	} else if res.Error != "" {
		resp.Error = &container.WaitExitError{Message: res.Error}
	}
	return jsonEncode(w, resp)
}

// deleteContainers: DELETE /containers/{id}?force= (docker rm).
func (s *Server) deleteContainers(w http.ResponseWriter, r *http.Request) error {
	if boolParam(r, "link") { // docker rm --link NAME: the link, not the container
		return s.deleteContainersLink(w, r)
	}
	if err := s.e.RemoveWithVolumes(r.Context(), s.ns(r), chi.URLParam(r, "id"), boolParam(r, "force"), boolParam(r, "v")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteContainersLink: DELETE /containers/{parent}/{alias}?link=true
// (docker rm --link parent/alias) removes a legacy link.
func (s *Server) deleteContainersLink(w http.ResponseWriter, r *http.Request) error {
	ref := chi.URLParam(r, "id")
	if a := chi.URLParam(r, "alias"); a != "" {
		ref += "/" + a
	}
	if !boolParam(r, "link") {
		return engine.Errorf(engine.KindNotFound, "No such container: %s", ref)
	}
	if s.cfg.Networks == nil {
		return engine.Errorf(engine.KindNotImplemented, "links are not supported by this control plane: it has no network plane")
	}
	if err := s.cfg.Networks.RemoveLink(r.Context(), s.ns(r), ref); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postContainersPrune: POST /containers/prune.
func (s *Server) postContainersPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	ids, freed, err := s.e.Prune(r.Context(), s.ns(r), f)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []string{}
	}
	return writeJSON(w, http.StatusOK, container.PruneReport{ContainersDeleted: ids, SpaceReclaimed: freed})
}

// graphDriver says where the container's filesystem is: on a function
// instance that is "up" (the files it wrote are there) or "gone" (the next
// start runs on a fresh instance with the image's files only).
func graphDriver(c *engine.Container) *storage.DriverData {
	inst := c.Instance
	if inst == "" {
		inst = "none"
	}
	return &storage.DriverData{Name: "cloud-run-functions", Data: map[string]string{"Instance": inst, "Function": c.Function}}
}

// runningExecs lists the IDs of a container's running execs, as docker
// inspect shows them (null when none).
func runningExecs(c *engine.Container) []string {
	var ids []string
	for id, x := range c.Execs {
		if x.Running && !x.Probe {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
