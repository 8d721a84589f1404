package engine

import (
	"fmt"
	"strconv"

	"github.com/moby/moby/api/types/container"
)

// Shape is the instance size a container asks for (docker run --cpus,
// --memory): its function's CPU and memory, in Cloud Run's terms. The
// zero Shape is Cloud Run's default (1 vCPU, 512 MiB).
type Shape struct {
	CPU    string `json:"cpu,omitempty"`    // vCPUs: "1", "2", "4", "6" or "8"
	Memory string `json:"memory,omitempty"` // e.g. "2048Mi"
}

// cloudRunCPUs are Cloud Run's CPU sizes with the memory each allows
// (MiB), for the second generation execution environment.
var cloudRunCPUs = []struct {
	cpu            int
	minMiB, maxMiB int64
}{{1, 512, 4096}, {2, 512, 8192}, {4, 2048, 16384}, {6, 4096, 24576}, {8, 4096, 32768}}

// ShapeOf is the smallest Cloud Run instance with at least hc's CPUs
// (NanoCPUs) and memory (Memory): the CPU rounded up to a size Cloud Run
// has, the memory to a MiB and into what that CPU allows. A container
// larger than Cloud Run's largest instance is a KindInvalid error.
func ShapeOf(hc *container.HostConfig) (Shape, error) {
	if hc == nil || (hc.NanoCPUs <= 0 && hc.Memory <= 0) {
		return Shape{}, nil
	}
	const mib = 1 << 20
	wantCPU := int((hc.NanoCPUs + 1e9 - 1) / 1e9)
	mem := (hc.Memory + mib - 1) / mib
	for _, c := range cloudRunCPUs {
		if c.cpu < wantCPU || mem > c.maxMiB {
			continue
		}
		mem = max(mem, c.minMiB)
		if c.cpu == 1 && mem == 512 {
			return Shape{}, nil // the default
		}
		return Shape{CPU: strconv.Itoa(c.cpu), Memory: fmt.Sprintf("%dMi", mem)}, nil
	}
	return Shape{}, Errorf(KindInvalid, "the container asks for more than Cloud Run's largest instance (8 vCPU, 32 GiB): %.3g CPUs, %d MiB", float64(hc.NanoCPUs)/1e9, mem)
}

// String is the shape's part of function keys and names ("" for the
// default).
func (s Shape) String() string {
	if s == (Shape{}) {
		return ""
	}
	return "c" + s.CPU + "-m" + s.Memory
}

// shapeOf is c's shape, checked at create.
func shapeOf(c *Container) Shape {
	s, _ := ShapeOf(c.HostConfig)
	return s
}
