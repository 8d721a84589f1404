package clientlink

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/moby/moby/api/types/network"

	"github.com/sockerless/sockerless/services/internal/portbind"
)

// Path is where the control plane accepts client links.
const Path = "/sockerless/v1/session"

// HeaderClient carries a client side's ID, on the link and on every API
// request it forwards: the control plane records it on the containers
// created through it, whose ports that client then binds.
const HeaderClient = "X-Sockerless-Client"

// KindPort is the proto.MeshOpen kind of a connection accepted on a
// published port.
const KindPort = "port"

// Ops the control plane sends on the control stream.
const (
	OpBind    = "bind"
	OpRelease = "release"
	OpSync    = "sync"
)

// Hello is the forwarder's first line on the control stream.
type Hello struct {
	Client string `json:"client"`
	// HostPorts are the ports of the client's machine exposed to
	// containers (forwarder --expose-host-port).
	HostPorts []int `json:"hostPorts,omitempty"`
}

// Op is a request of the control plane.
type Op struct {
	Seq uint64 `json:"seq"`
	Op  string `json:"op"`
	// Bind is the OpBind request.
	Bind *portbind.Request `json:"bind,omitempty"`
	// Container and Run name what OpRelease releases.
	Container string `json:"container,omitempty"`
	Run       uint32 `json:"run,omitempty"`
	// Sync is every binding the client must hold (OpSync).
	Sync []portbind.Request `json:"sync,omitempty"`
}

// Result answers the Op with the same Seq.
type Result struct {
	Seq   uint64          `json:"seq"`
	Ports network.PortMap `json:"ports,omitempty"`
	Error string          `json:"error,omitempty"`
	// Errors are, per container, the bindings a sync could not make.
	Errors map[string]string `json:"errors,omitempty"`
}

// ClientID derives a stable client ID from the machine's host name and the
// forwarder's listen address: a restarted forwarder has the same ID and
// binds again the ports of the containers created through it.
func ClientID(hostname, listen string) string {
	h := sha256.Sum256([]byte(hostname + "\x00" + listen))
	return "fwd-" + hex.EncodeToString(h[:8])
}
