package process

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		arg      string
		env      []string
		dir      string
		want     string
		wantCode int
		wantMsg  string
	}{
		{"found through the process PATH", "tool", []string{"PATH=/nowhere:" + bin}, "/", filepath.Join(bin, "tool"), 0, ""},
		{"last PATH in env wins", "tool", []string{"PATH=/nowhere", "PATH=" + bin}, "/", filepath.Join(bin, "tool"), 0, ""},
		{"relative PATH entry is taken from the working dir", "tool", []string{"PATH=bin"}, dir, filepath.Join(bin, "tool"), 0, ""},
		{"not in PATH is 127", "nope", []string{"PATH=" + bin}, "/", "", 127, `exec: "nope": executable file not found in $PATH`},
		{"not executable in PATH is not found", "data", []string{"PATH=" + bin}, "/", "", 127, `exec: "data": executable file not found in $PATH`},
		{"absolute path missing is 127", "/nope/x", nil, "/", "", 127, `exec: "/nope/x": stat /nope/x: no such file or directory`},
		{"absolute path not executable is 126", filepath.Join(bin, "data"), nil, "/", "", 126, `exec: "` + filepath.Join(bin, "data") + `": permission denied`},
		{"directory is 126", bin, nil, "/", "", 126, `exec: "` + bin + `": is a directory`},
		{"relative path with slash is taken from the working dir", "./bin/tool", nil, dir, filepath.Join(bin, "tool"), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookPath(tt.arg, tt.env, tt.dir)
			if tt.wantCode != 0 {
				var se *StartError
				if !errors.As(err, &se) || se.Code != tt.wantCode || se.Msg != tt.wantMsg {
					t.Fatalf("err = %#v, want code %d msg %q", err, tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
