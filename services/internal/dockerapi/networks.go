package dockerapi

import (
	"encoding/json"
	"net/http"
	"net/netip"

	"github.com/go-chi/chi/v5"
	"github.com/moby/moby/api/types/network"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
)

// networkRoutes serves docker network; without a network plane every
// network route is 501.
func (s *Server) networkRoutes(r chi.Router) {
	if s.cfg.Networks == nil {
		for _, p := range []string{"/networks", "/networks/create", "/networks/prune", "/networks/{id}", "/networks/{id}/connect", "/networks/{id}/disconnect"} {
			r.HandleFunc(p, notImplemented)
		}
		return
	}
	r.Get("/networks", s.h(s.getNetworks))
	r.Post("/networks/create", s.h(s.postNetworksCreate))
	r.Post("/networks/prune", s.h(s.postNetworksPrune))
	r.Get("/networks/{id}", s.h(s.getNetworksByID))
	r.Delete("/networks/{id}", s.h(s.deleteNetworks))
	r.Post("/networks/{id}/connect", s.h(s.postNetworksConnect))
	r.Post("/networks/{id}/disconnect", s.h(s.postNetworksDisconnect))
}

// getNetworks: GET /networks?filters= (docker network ls). bridge, host
// and none are always there.
func (s *Server) getNetworks(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	nets, err := s.cfg.Networks.List(r.Context(), s.ns(r), f)
	if err != nil {
		return err
	}
	out := make([]network.Inspect, 0, len(nets))
	for _, n := range nets {
		out = append(out, networkJSON(n, false))
	}
	return writeJSON(w, http.StatusOK, out)
}

// getNetworksByID: GET /networks/{id} (docker network inspect).
func (s *Server) getNetworksByID(w http.ResponseWriter, r *http.Request) error {
	n, err := s.cfg.Networks.Network(r.Context(), s.ns(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, networkJSON(n, true))
}

// postNetworksCreate: POST /networks/create (docker network create).
func (s *Server) postNetworksCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		network.CreateRequest
		// CheckDuplicate is gone from the API types (1.44 always checks);
		// before 1.44 docker 20.10 checks only when it is true, and
		// docker-py sends null unless told. Clients that leave it out
		// entirely are newer ones that expect the check.
		CheckDuplicate json.RawMessage
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var (
		n       *netplane.Network
		warning string
		err     error
	)
	if req.CheckDuplicate != nil && string(req.CheckDuplicate) != "true" && versionLess(requestVersion(r), "1.44") {
		n, warning, err = s.cfg.Networks.CreateNamesake(r.Context(), s.ns(r), req.CreateRequest)
	} else {
		n, err = s.cfg.Networks.Create(r.Context(), s.ns(r), req.CreateRequest)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, network.CreateResponse{ID: n.ID, Warning: warning})
}

// deleteNetworks: DELETE /networks/{id} (docker network rm).
func (s *Server) deleteNetworks(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Networks.Remove(r.Context(), s.ns(r), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postNetworksConnect: POST /networks/{id}/connect (docker network connect).
func (s *Server) postNetworksConnect(w http.ResponseWriter, r *http.Request) error {
	var req network.ConnectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.cfg.Networks.Connect(r.Context(), s.ns(r), chi.URLParam(r, "id"), req.Container, req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// postNetworksDisconnect: POST /networks/{id}/disconnect (docker network
// disconnect).
func (s *Server) postNetworksDisconnect(w http.ResponseWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.cfg.Networks.Disconnect(r.Context(), s.ns(r), chi.URLParam(r, "id"), req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// postNetworksPrune: POST /networks/prune (docker network prune).
func (s *Server) postNetworksPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersParam(r)
	if err != nil {
		return err
	}
	names, err := s.cfg.Networks.Prune(r.Context(), s.ns(r), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: names})
}

// networkJSON is a network as docker shows it; the list leaves out its
// containers, as docker's does.
func networkJSON(n *netplane.Network, containers bool) network.Inspect {
	out := network.Inspect{
		Network: network.Network{
			Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
			EnableIPv4: true, Attachable: n.Attachable,
			IPAM:    network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
			Options: map[string]string{}, Labels: map[string]string{},
		},
		Containers: map[string]network.EndpointResource{},
	}
	for k, v := range n.Labels {
		out.Labels[k] = v
	}
	if !n.Predefined() {
		out.IPAM.Options = map[string]string{}
	}
	if n.Name == netplane.Bridge && n.Predefined() {
		out.Options["com.docker.network.bridge.default_bridge"] = "true"
		out.Options["com.docker.network.bridge.enable_icc"] = "true"
	}
	if sub, err := netip.ParsePrefix(n.Subnet); err == nil {
		c := network.IPAMConfig{Subnet: sub}
		if !n.UserSubnet || n.UserGateway {
			c.Gateway, _ = netip.ParseAddr(n.Gateway)
		}
		if n.IPRange != "" {
			c.IPRange, _ = netip.ParsePrefix(n.IPRange)
		}
		for name, a := range n.AuxAddresses {
			if c.AuxAddress == nil {
				c.AuxAddress = map[string]netip.Addr{}
			}
			c.AuxAddress[name], _ = netip.ParseAddr(a)
		}
		out.IPAM.Config = append(out.IPAM.Config, c)
	}
	if containers {
		for id, ep := range n.Endpoints {
			res := network.EndpointResource{Name: ep.Name, EndpointID: ep.ID}
			if a, err := netip.ParseAddr(ep.IP); err == nil {
				res.IPv4Address = netip.PrefixFrom(a, prefixBits(n))
			}
			res.MacAddress = parseMAC(ep.MAC)
			out.Containers[id] = res
		}
	}
	return out
}

func prefixBits(n *netplane.Network) int {
	p, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return 0
	}
	return p.Bits()
}

// networksOf returns a container's networks as inspect and ps show them.
func (s *Server) networksOf(r *http.Request, c *engine.Container) (map[string]*network.EndpointSettings, error) {
	if s.cfg.Networks == nil {
		return map[string]*network.EndpointSettings{}, nil
	}
	legacy := versionLess(requestVersion(r), "1.45")
	nets, err := s.cfg.Networks.EndpointSettings(r.Context(), c, legacy)
	if err != nil {
		return nil, err
	}
	if c.State.Status == engine.StatusCreated {
		for _, es := range nets { // docker fills these in at the first start
			es.NetworkID = ""
		}
	}
	return nets, nil
}
