package engine

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestSplitDockerSockets(t *testing.T) {
	own := []string{"/tmp/fwd.sock"}
	cases := []struct {
		name      string
		hc        container.HostConfig
		want      []Mount
		restBinds []string
		restMnts  int
		err       string
	}{
		{name: "default socket bound", hc: container.HostConfig{Binds: []string{"/var/run/docker.sock:/var/run/docker.sock", "vol:/data"}},
			want:      []Mount{{Type: MountDockerSocket, Source: "/var/run/docker.sock", Destination: "/var/run/docker.sock", RW: true}},
			restBinds: []string{"vol:/data"}},
		{name: "client's own socket, read-only", hc: container.HostConfig{Binds: []string{"/tmp/fwd.sock:/run/d.sock:ro"}},
			want: []Mount{{Type: MountDockerSocket, Source: "/tmp/fwd.sock", Destination: "/run/d.sock", Mode: "ro"}}},
		{name: "--mount of the socket", hc: container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/run/docker.sock", Target: "/var/run/docker.sock/"}, {Type: mount.TypeVolume, Source: "v", Target: "/v"}}},
			want:     []Mount{{Type: MountDockerSocket, Source: "/run/docker.sock", Destination: "/var/run/docker.sock", RW: true}},
			restMnts: 1},
		{name: "other host paths are left to resolveMounts", hc: container.HostConfig{Binds: []string{"/home/me:/w", "/tmp/other.sock:/x"}},
			restBinds: []string{"/home/me:/w", "/tmp/other.sock:/x"}},
		{name: "bad mode refused", hc: container.HostConfig{Binds: []string{"/var/run/docker.sock:/s:nope"}}, err: "invalid mode: nope"},
		{name: "relative destination refused", hc: container.HostConfig{Binds: []string{"/var/run/docker.sock:s"}}, err: "must be absolute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rest, got, err := splitDockerSockets(&tc.hc, own)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Type != tc.want[i].Type || got[i].Source != tc.want[i].Source || got[i].Destination != tc.want[i].Destination || got[i].RW != tc.want[i].RW || got[i].Mode != tc.want[i].Mode {
					t.Fatalf("got %+v want %+v", got[i], tc.want[i])
				}
			}
			if len(rest.Binds) != len(tc.restBinds) || len(rest.Mounts) != tc.restMnts {
				t.Fatalf("rest %v %v", rest.Binds, rest.Mounts)
			}
		})
	}
}

func TestMergeSocketMountsRefusesDuplicates(t *testing.T) {
	ms := []Mount{{Type: MountVolume, Destination: "/var/run/docker.sock"}}
	if _, err := mergeSocketMounts(ms, []Mount{{Type: MountDockerSocket, Destination: "/var/run/docker.sock"}}); err == nil {
		t.Fatal("duplicate destination accepted")
	}
	out, err := mergeSocketMounts([]Mount{{Destination: "/z"}}, []Mount{{Destination: "/a"}})
	if err != nil || out[0].Destination != "/a" {
		t.Fatalf("%v %v", out, err)
	}
}
