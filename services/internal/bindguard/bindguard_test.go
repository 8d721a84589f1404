package bindguard

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

func TestAllow(t *testing.T) {
	g, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"Image":"busybox","HostConfig":{"Binds":["/home/me/src:/src","/home/me/conf:/etc/app:ro,z","cache:/cache","/var/run/docker.sock:/var/run/docker.sock"],
		"Mounts":[{"Type":"bind","Source":"/srv/data/","Target":"/data","ReadOnly":true},{"Type":"volume","Source":"vol","Target":"/v"}]}}`
	if err := g.RecordCreate([]byte(body)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		path        string
		ro, create  bool
		wantGranted bool
	}{
		{"a bound directory", "/home/me/src", false, false, true},
		{"a file under it", "/home/me/src/pkg/main.go", false, false, true},
		{"its source created, as docker -v does", "/home/me/src", false, true, true},
		{"a path under it is not created", "/home/me/src/new", false, true, false},
		{"a sibling with the same prefix", "/home/me/src2", true, false, false},
		{"its parent", "/home/me", true, false, false},
		{"dot-dot out of it", "/home/me/src/../.ssh/id_rsa", true, false, false},
		{"a read-only bind read", "/home/me/conf", true, false, true},
		{"a read-only bind written", "/home/me/conf", false, false, false},
		{"a mount, cleaned", "/srv/data/x", true, false, true},
		{"a mount written", "/srv/data", false, false, false},
		{"the socket", "/var/run/docker.sock", false, false, true},
		{"a named volume is no path", "cache", true, false, false},
		{"root", "/", true, false, false},
		{"elsewhere", "/etc/shadow", true, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := g.Allow(tc.path, tc.ro, tc.create)
			if tc.wantGranted && err != nil || !tc.wantGranted && !errors.Is(err, ErrNotGranted) {
				t.Fatalf("Allow(%q, ro=%v, create=%v) = %v, want granted %v", tc.path, tc.ro, tc.create, err, tc.wantGranted)
			}
		})
	}
}

func TestARecordOutlivesTheProcess(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", "binds.json")
	g, err := Open(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.RecordCreate([]byte(`{"HostConfig":{"Binds":["/w:/w"]}}`)); err != nil {
		t.Fatal(err)
	}
	again, err := Open(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Allow("/w/f", false, false); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if err := again.Allow("/x", true, false); !errors.Is(err, ErrNotGranted) {
		t.Fatalf("an ungranted path after a restart: %v", err)
	}
}

func TestTheRecordIsBounded(t *testing.T) {
	g, _ := Open("")
	for i := range MaxGrants + 10 {
		if err := g.RecordCreate([]byte(fmt.Sprintf(`{"HostConfig":{"Binds":["/p%d:/w"]}}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if len(g.grants) != MaxGrants {
		t.Fatalf("%d grants, want at most %d", len(g.grants), MaxGrants)
	}
	if err := g.Allow(fmt.Sprintf("/p%d", MaxGrants+9), false, false); err != nil {
		t.Fatalf("the newest grant went: %v", err)
	}
}
