package imageops

import (
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// SaveItem is one image of a docker save, with the names it is saved
// under (none when it was named by ID).
type SaveItem struct {
	Image *engine.Image
	Tags  []string
}

// Progress reports how far the upload of one layer (id: its short name)
// has come.
type Progress func(id string, current, total int64)

// NewImage is an image docker import or commit makes: one layer on Base
// (none for import) with Config.
type NewImage struct {
	Base *engine.Image
	// Layer is a tar, compressed or not; it is read once.
	Layer     io.Reader
	Config    *container.Config
	Created   time.Time
	Author    string
	Comment   string
	CreatedBy string
	// Container and ContainerConfig name the committed container.
	Container       string
	ContainerConfig *container.Config
}

// PushAuth is what the client sent in X-Registry-Auth.
type PushAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// PushStatus is one step of a push, for docker's progress messages.
type PushStatus struct {
	Status string // "Preparing", "Pushing", "Pushed"
	Layer  string // twelve hex digits
}
