package instance

import (
	"fmt"

	"github.com/sockerless/sockerless/agent/internal/mounts"
	"github.com/sockerless/sockerless/agent/proto"
)

// mount applies the container's volumes and tmpfs mounts before anything
// runs or is copied in: a failure ends the invocation with the reason,
// which the control plane reports as the start's error.
func (in *Instance) mount() error {
	m := in.cfg.Mounter
	if m == nil {
		m = mounts.Local{Root: proto.VolumesRoot}
	}
	if err := m.Mount(in.cfg.Invocation.Mounts); err != nil {
		in.log.Error("mounts", "err", err)
		return fmt.Errorf("set up the container's mounts: %w", err)
	}
	return nil
}
