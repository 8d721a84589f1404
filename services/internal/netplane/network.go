package netplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Drivers of networks. Only bridge networks carry containers with
// addresses; host and none are the predefined ones of those names.
const (
	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"
)

// Names of the predefined networks, present in every namespace.
const (
	Bridge = "bridge"
	Host   = "host"
	None   = "none"
)

// Network is the stored record of one docker network.
type Network struct {
	ID        string            `json:"id"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Created   time.Time         `json:"created"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Attachable is kept and shown as docker does; it changes nothing here.
	Attachable bool `json:"attachable,omitempty"`
	// Subnet is the network's range inside 127.0.0.0/8 ("" for host and
	// none); Gateway its first address; IPRange, if set, where container
	// addresses come from.
	Subnet  string `json:"subnet,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	IPRange string `json:"ipRange,omitempty"`
	// UserSubnet says the user chose the subnet, which allows static
	// container addresses (--ip) as docker does.
	UserSubnet bool `json:"userSubnet,omitempty"`
	// UserGateway says the user chose the gateway (docker then shows it).
	UserGateway bool `json:"userGateway,omitempty"`
	// AuxAddresses are addresses reserved by name (--aux-address): no
	// container is given them.
	AuxAddresses map[string]string `json:"auxAddresses,omitempty"`
	// Endpoints are the running members, by container ID.
	Endpoints map[string]*Endpoint `json:"endpoints,omitempty"`
	// NameShared says the network was made with the name of an existing
	// one (docker's CheckDuplicate false, before API 1.44): it reserves no
	// name, and is found by its name only once it is the only one left.
	NameShared bool `json:"nameShared,omitempty"`
	// Namesakes says networks with NameShared took this one's name, so a
	// lookup by name has to count them.
	Namesakes bool `json:"namesakes,omitempty"`
	// Rev counts the record's changes, so that of two copies the newer
	// is known (the plane's cache).
	Rev uint64 `json:"rev,omitempty"`
}

// Endpoint is a running container's membership of a network.
type Endpoint struct {
	ID        string `json:"id"`
	Container string `json:"container"`
	Name      string `json:"name"` // the container's name, without "/"
	IP        string `json:"ip"`
	MAC       string `json:"mac"`
	// Aliases are the network aliases the user gave (--network-alias).
	Aliases []string `json:"aliases,omitempty"`
	// Ports are the container's declared TCP ports (ExposedPorts,
	// published ports); Listening those its processes listen on, as its
	// agent reported. Peers reach both.
	Ports     []int `json:"ports,omitempty"`
	Listening []int `json:"listening,omitempty"`
	// UDPPorts are its declared UDP ports, which peers reach too.
	UDPPorts []int `json:"udpPorts,omitempty"`
	// Attached orders the container's own /etc/hosts lines.
	Attached time.Time `json:"attached"`
	// Spec is what the container's own view needs besides its networks.
	Spec *Spec `json:"spec,omitempty"`
}

// Spec is the part of a container's view that does not come from its
// networks; it is kept in each of its endpoints, so that views are built
// from network records alone.
type Spec struct {
	Hostname   string            `json:"hostname"`
	Domainname string            `json:"domainname,omitempty"`
	ExtraHosts []proto.HostEntry `json:"extraHosts,omitempty"`
	// HostGateway: an extra host names host-gateway, so the agent listens
	// there for the ports of the client's machine the user allowed.
	HostGateway bool `json:"hostGateway,omitempty"`
	// Client is the client side the container was created through, whose
	// machine host-gateway reaches (engine.Container.Client).
	Client     string   `json:"client,omitempty"`
	Links      []Link   `json:"links,omitempty"`
	DNSServers []string `json:"dnsServers,omitempty"`
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
}

// Link is a --link: Alias names container Container (called Name).
type Link struct {
	Container string `json:"container"`
	Name      string `json:"name"`
	Alias     string `json:"alias"`
	// ByName: a link given on a user network, which resolves to whichever
	// member is called Name (docker allows the target to come later).
	ByName bool `json:"byName,omitempty"`
}

// target is the endpoint of n that link l names, if any.
func (l Link) target(n *Network) *Endpoint {
	if t := n.Endpoints[l.Container]; t != nil && l.Container != "" {
		return t
	}
	if !l.ByName {
		return nil
	}
	for _, ep := range n.Endpoints {
		if ep.Name == l.Name {
			return ep
		}
	}
	return nil
}

// Store keeps networks. Every method is atomic, as engine.Store's are.
type Store interface {
	// CreateNetwork stores n and reserves its name and its subnet (if
	// any) in its namespace. Returns engine.ErrConflict if the ID or the
	// name is taken, ErrSubnetTaken if the subnet is.
	CreateNetwork(ctx context.Context, n *Network) error
	// GetNetwork finds a network of namespace ns by full ID, name or
	// unique ID prefix (in that order, as docker). Returns
	// engine.ErrNotFound, or engine.ErrAmbiguous for a prefix that
	// matches several.
	GetNetwork(ctx context.Context, ns, ref string) (*Network, error)
	// ListNetworks returns the namespace's networks.
	ListNetworks(ctx context.Context, ns string) ([]*Network, error)
	// UpdateNetwork reads network id, calls fn on it and writes the
	// result in one transaction (fn may run more than once); an error
	// from fn aborts and is returned as is. Returns engine.ErrNotFound.
	UpdateNetwork(ctx context.Context, ns, id string, fn func(*Network) error) (*Network, error)
	// DeleteNetwork removes network id and frees its name and subnet.
	// Returns engine.ErrNotFound.
	DeleteNetwork(ctx context.Context, ns, id string) error
}

// ErrSubnetTaken is what CreateNetwork returns when another network of
// the namespace has the subnet.
var ErrSubnetTaken = &engine.Error{Kind: engine.KindConflict, Message: "subnet taken"}

// predefinedID is the ID of predefined network name in namespace ns: the
// same in every control plane process, so creating it is idempotent.
func predefinedID(ns, name string) string {
	h := sha256.Sum256([]byte("sockerless/network/" + ns + "/" + name))
	return hex.EncodeToString(h[:])
}

// Predefined reports whether n is one of bridge, host and none.
func (n *Network) Predefined() bool {
	return n.ID == predefinedID(n.Namespace, n.Name) && (n.Name == Bridge || n.Name == Host || n.Name == None)
}

// userDefined reports whether n is a network a user created: its members
// resolve each other by name.
func (n *Network) userDefined() bool { return !n.Predefined() }

// ShortID is docker's 12-character form of an ID.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
