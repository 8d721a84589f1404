package instances

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sockerless/sockerless/services/internal/gcpsim/logging"
	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
)

func TestProcess(t *testing.T) {
	img := &image{Config: v1.Config{
		Entrypoint: []string{"/entry"}, Cmd: []string{"cmd-arg"},
		Env: []string{"PATH=/img/bin", "A=image", "B=image"}, WorkingDir: "/work",
	}}
	tests := []struct {
		name     string
		command  []string
		args     []string
		wantArgs []string
	}{
		{"the image's entrypoint and cmd run by default", nil, nil, []string{"/entry", "cmd-arg"}},
		{"args replace cmd", nil, []string{"x"}, []string{"/entry", "x"}},
		{"command replaces both", []string{"/other"}, nil, []string{"/other"}},
		{"command and args together", []string{"/other"}, []string{"y"}, []string{"/other", "y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &instance{id: "inst", port: 8123, rev: &run.Revision{
				ServiceID: "svc", Name: "svc-00001-abc", Command: tc.command, Args: tc.args,
				Env: []string{"B=service", "C=service"},
			}}
			p, err := in.process(img, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Args, tc.wantArgs) {
				t.Errorf("args = %v, want %v", p.Args, tc.wantArgs)
			}
			env := strings.Join(p.Env, " ")
			for _, want := range []string{"PATH=/img/bin", "A=image", "B=service", "C=service", "PORT=8123", "K_SERVICE=svc", "K_REVISION=svc-00001-abc", "HOME=/root"} {
				if !slices.Contains(p.Env, want) {
					t.Errorf("env %s lacks %s", env, want)
				}
			}
			if strings.Count(env, "B=") != 1 {
				t.Errorf("env %s has B twice", env)
			}
			if p.Cwd != "/work" || p.User.UID != 0 || p.Hostname != "inst" {
				t.Errorf("cwd %q user %+v hostname %q", p.Cwd, p.User, p.Hostname)
			}
		})
	}
	t.Run("no command at all is an error", func(t *testing.T) {
		in := &instance{rev: &run.Revision{}}
		if _, err := in.process(&image{}, t.TempDir()); err == nil {
			t.Error("want an error")
		}
	})
}

func TestSpecJoinsTheInstanceNetwork(t *testing.T) {
	spec := newSpec(processSpec{Args: []string{"/bin/sh"}, User: ociUser{UID: 1000}, Netns: "/state/net/netns"})
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	ns := map[string]string{}
	for _, n := range m["linux"].(map[string]any)["namespaces"].([]any) {
		n := n.(map[string]any)
		path, _ := n["path"].(string)
		ns[n["type"].(string)] = path
	}
	want := map[string]string{"pid": "", "ipc": "", "uts": "", "mount": "", "network": "/state/net/netns"}
	if !maps.Equal(ns, want) {
		t.Errorf("namespaces = %v, want %v (new ones, and the instance's network namespace)", ns, want)
	}
	if spec.Process.NoNewPrivileges || len(spec.Process.Capabilities.Effective) != 0 || len(spec.Process.Capabilities.Bounding) != len(defaultCaps) {
		t.Errorf("capabilities of a non-root user = %+v", spec.Process.Capabilities)
	}
	var dests []string
	for _, mnt := range spec.Mounts {
		dests = append(dests, mnt.Destination)
	}
	if want := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"}; !slices.Equal(dests, want) {
		// /etc/resolv.conf and /etc/hosts are files of the rootfs, which
		// the agent rewrites: no bind mount over them.
		t.Errorf("mounts %v, want %v", dests, want)
	}
}

func TestManagerNeedsConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a state dir succeeded")
	}
	m, err := New(Config{StateDir: t.TempDir(), Logs: nopSink{}, IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(t.Context()); err != nil {
		t.Errorf("close: %v", err)
	}
}

type nopSink struct{}

func (nopSink) Append(logging.Entry) {}
