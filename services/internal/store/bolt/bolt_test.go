package bolt

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.Store {
		s, err := Open(filepath.Join(t.TempDir(), "store.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestStatePersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c := storetest.NewContainer("default", "c1", "web")
	c.State = engine.State{Status: engine.StatusExited, ExitCode: 3}
	if err := s.CreateContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLogs(ctx, "default", "c1", []engine.LogEntry{{Stream: 1, Data: []byte("hi\n")}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, &engine.Image{ID: "sha256:ab", RepoTags: []string{"busybox:latest"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil {
		t.Fatal("a second open of a locked store succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetContainer(ctx, "default", "web")
	if err != nil || got.State.ExitCode != 3 {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	logs, err := s.ReadLogs(ctx, "default", "c1", 0, 0)
	if err != nil || len(logs) != 1 || string(logs[0].Data) != "hi\n" {
		t.Fatalf("logs after reopen: %+v, %v", logs, err)
	}
	if _, err := s.GetImage(ctx, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
}
