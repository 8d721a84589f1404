package engine

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func TestResolveMounts(t *testing.T) {
	src := &Container{Mounts: []Mount{
		{Type: MountVolume, Name: "shared", Destination: "/s", RW: true, Mode: "z", Anonymous: true},
		{Type: MountTmpfs, Destination: "/tmp"},
	}}
	from := func(ref string) (*Container, error) {
		if ref == "src" {
			return src, nil
		}
		return nil, Errorf(KindNotFound, "No such container: %s", ref)
	}
	tests := []struct {
		name    string
		cfg     container.Config
		hc      container.HostConfig
		img     container.Config
		want    string // "type name dest mode rw nocopy anon opts" per mount, ";"-joined
		wantErr string
	}{
		{name: "named volume from -v keeps docker's z mode",
			hc:   container.HostConfig{Binds: []string{"data:/data"}},
			want: "volume data /data z true false false "},
		{name: "ro and nocopy modes",
			hc:   container.HostConfig{Binds: []string{"data:/data:ro,nocopy"}},
			want: "volume data /data ro,nocopy false true false "},
		{name: "host bind", hc: container.HostConfig{Binds: []string{"/home/u/w/:/x:ro"}}, want: "bind  /x ro false false false "},
		{name: "host bind with a bad mode", hc: container.HostConfig{Binds: []string{"/etc:/x:nocopy"}}, wantErr: "invalid mode"},
		{name: "relative host path is refused", hc: container.HostConfig{Binds: []string{"./x:/x"}}, wantErr: "a host path must be absolute"},
		{name: "--mount type=bind", hc: container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/etc", Target: "/x"}}}, want: "bind  /x  true false false "},
		{name: "docker.sock bind is refused until served", hc: container.HostConfig{Binds: []string{"/var/run/docker.sock:/var/run/docker.sock"}}, wantErr: "Docker socket"},
		{name: "relative destination is refused", hc: container.HostConfig{Binds: []string{"data:data"}}, wantErr: "must be absolute"},
		{name: "duplicate mount point is refused", hc: container.HostConfig{Binds: []string{"a1:/d", "b1:/d/"}}, wantErr: "Duplicate mount point: /d"},
		{name: "bad volume name is refused", hc: container.HostConfig{Binds: []string{"a:/d"}}, wantErr: "volume name is too short"},
		{name: "another driver is refused", hc: container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/v", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs"}}}}}, wantErr: "volume driver \"nfs\" is not supported"},
		{name: "--mount volume readonly nocopy",
			hc:   container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/v", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}}}},
			want: "volume v1 /v z false true false "},
		{name: "--tmpfs size in bytes, unlisted",
			hc:   container.HostConfig{Tmpfs: map[string]string{"/run": "size=64m,exec"}},
			want: "tmpfs  /run  true false false size=67108864,exec"},
		{name: "bad tmpfs option is refused", hc: container.HostConfig{Tmpfs: map[string]string{"/run": "bogus"}}, wantErr: "invalid tmpfs option"},
		{name: "--mount tmpfs with size and mode",
			hc:   container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o700}}}},
			want: "tmpfs  /t  true false false size=1048576,mode=700"},
		{name: "container and image VOLUMEs are anonymous unless mounted",
			cfg:  container.Config{Volumes: map[string]struct{}{"/a": {}}},
			img:  container.Config{Volumes: map[string]struct{}{"/b": {}, "/c": {}}},
			hc:   container.HostConfig{Binds: []string{"named:/c"}},
			want: "volume * /a  true false true ;volume * /b  true false true ;volume named /c z true false false "},
		{name: "volumes-from ro takes volumes only, not anonymous for the new one",
			hc:   container.HostConfig{VolumesFrom: []string{"src:ro"}},
			want: "volume shared /s  false false false "},
		{name: "volumes-from of a missing container", hc: container.HostConfig{VolumesFrom: []string{"nope"}}, wantErr: "No such container: nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := resolveMounts(&tc.cfg, &tc.hc, &tc.img, from)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || KindOf(err) == KindInternal {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				name := m.Name
				if m.Anonymous {
					name = "*"
				}
				got = append(got, strings.Join([]string{m.Type, name, m.Destination, m.Mode, boolText(m.RW), boolText(m.NoCopy), boolText(m.Anonymous), m.TmpfsOptions}, " "))
			}
			if g := strings.Join(got, ";"); g != tc.want {
				t.Fatalf("mounts\n got %q\nwant %q", g, tc.want)
			}
		})
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
