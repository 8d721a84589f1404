package process

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writeUserDB(t *testing.T) (passwd, group string) {
	t.Helper()
	dir := t.TempDir()
	passwd = filepath.Join(dir, "passwd")
	group = filepath.Join(dir, "group")
	if err := os.WriteFile(passwd, []byte(`# comment
root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
nohome:x:1001:1001::
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(group, []byte(`root:x:0:
wheel:x:10:root,alice
alice:x:1000:
audio:x:29:alice
nogroup:x:65534:
`), 0o644); err != nil {
		t.Fatal(err)
	}
	return passwd, group
}

func TestResolveUser(t *testing.T) {
	passwd, group := writeUserDB(t)
	tests := []struct {
		name    string
		spec    string
		want    Credential
		wantErr string
	}{
		// As docker shows with id: the primary group is among the groups too.
		{"empty is root with root's home and groups", "", Credential{UID: 0, GID: 0, Groups: []uint32{0, 10}, Home: "/root"}, ""},
		{"name gives uid gid home and member groups", "alice", Credential{UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 29}, Home: "/home/alice"}, ""},
		{"numeric uid in passwd is that user", "65534", Credential{UID: 65534, GID: 65534, Groups: []uint32{65534}, Home: "/nonexistent"}, ""},
		{"numeric uid not in passwd gets gid 0 and home slash", "4242", Credential{UID: 4242, GID: 0, Home: "/"}, ""},
		{"explicit numeric group replaces primary and drops supplementary", "alice:29", Credential{UID: 1000, GID: 29, Home: "/home/alice"}, ""},
		{"explicit group name", "alice:wheel", Credential{UID: 1000, GID: 10, Home: "/home/alice"}, ""},
		{"uid and unknown numeric gid", "4242:4343", Credential{UID: 4242, GID: 4343, Home: "/"}, ""},
		{"user without home field gets slash", "nohome", Credential{UID: 1001, GID: 1001, Groups: []uint32{1001}, Home: "/"}, ""},
		{"unknown name fails like runc", "nope", Credential{}, "unable to find user nope: no matching entries in passwd file"},
		{"unknown group name fails like runc", "alice:nope", Credential{}, "unable to find group nope: no matching entries in group file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveUser(tt.spec, passwd, group)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	dir := t.TempDir()
	p, g := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	tests := []struct {
		name    string
		spec    string
		want    Credential
		wantErr bool
	}{
		{"empty is uid 0", "", Credential{Home: "/"}, false},
		{"numeric works", "7:8", Credential{UID: 7, GID: 8, Home: "/"}, false},
		{"name fails", "alice", Credential{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveUser(tt.spec, p, g)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
