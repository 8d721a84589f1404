package engine

import (
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestShapeOf(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name    string
		cpus    float64
		mem     int64
		want    Shape
		invalid bool
	}{
		{name: "nothing asked: the default"},
		{name: "within the default", cpus: 0.5, mem: 256 << 20},
		{name: "two CPUs", cpus: 2, want: Shape{CPU: "2", Memory: "512Mi"}},
		{name: "1.5 CPUs round up", cpus: 1.5, mem: gib, want: Shape{CPU: "2", Memory: "1024Mi"}},
		{name: "memory beyond one CPU's limit needs two", mem: 6 * gib, want: Shape{CPU: "2", Memory: "6144Mi"}},
		{name: "four CPUs need 2 GiB", cpus: 3, want: Shape{CPU: "4", Memory: "2048Mi"}},
		{name: "too big", cpus: 16, invalid: true},
		{name: "too much memory", mem: 64 * gib, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ShapeOf(&container.HostConfig{Resources: container.Resources{NanoCPUs: int64(tt.cpus * 1e9), Memory: tt.mem}})
			if tt.invalid {
				if KindOf(err) != KindInvalid {
					t.Fatalf("err = %v, want invalid", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ShapeOf = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
