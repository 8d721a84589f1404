package bolt

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"synced", Options{}},
		{"nosync", Options{NoSync: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) engine.Store {
				s, err := Open(filepath.Join(t.TempDir(), "store.db"), tt.opts)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

func TestStatePersistsAcrossReopen(t *testing.T) {
	ctx := t.Context()
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
	if _, err := s.AppendLogs(ctx, "default", "c1", []engine.LogEntry{{Stream: engine.Stdout, Data: []byte("hi\n")}}, map[uint32]uint64{1: 4}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, &engine.Image{ID: "sha256:ab", RepoTags: []string{"busybox:latest"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFunction(ctx, "img", func(*engine.Function) (*engine.Function, error) {
		return &engine.Function{Name: "fn", Status: engine.FunctionReady, URL: "http://fn"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name  string
		check func() error
	}{
		{"container keeps its state and acks", func() error {
			got, err := s.GetContainer(ctx, "default", "web")
			if err != nil || got.State.ExitCode != 3 || got.LogSeq != 1 || got.Acked[1] != 4 {
				return fmt.Errorf("got %+v, %v", got, err)
			}
			return nil
		}},
		{"name stays reserved", func() error {
			err := s.CreateContainer(ctx, storetest.NewContainer("default", "c2", "web"))
			if engine.KindOf(err) != engine.KindConflict {
				return fmt.Errorf("create with the name: %v", err)
			}
			return nil
		}},
		{"logs are kept and seq continues", func() error {
			logs, err := s.ReadLogs(ctx, "default", "c1", 0, 0)
			if err != nil || len(logs) != 1 || string(logs[0].Data) != "hi\n" {
				return fmt.Errorf("logs %+v, %v", logs, err)
			}
			more, err := s.AppendLogs(ctx, "default", "c1", []engine.LogEntry{{Stream: engine.Stdout}}, nil)
			if err != nil || more[0].Seq != 2 {
				return fmt.Errorf("next append %+v, %v", more, err)
			}
			return nil
		}},
		{"image is found by tag", func() error {
			_, err := s.GetImage(ctx, "busybox:latest")
			return err
		}},
		{"function is kept", func() error {
			f, err := s.GetFunction(ctx, "img")
			if err != nil || f.URL != "http://fn" {
				return fmt.Errorf("function %+v, %v", f, err)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSecondOpenFailsWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	s2, err := Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("a second open of a locked store succeeded")
	}
	if !strings.Contains(err.Error(), path) || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %v; want the path named, within the 2 s timeout", err, time.Since(start))
	}
}

func TestLogEntryEncoding(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	tests := []struct {
		name    string
		value   []byte
		want    engine.LogEntry
		wantErr bool
	}{
		{"binary entry decodes", encodeEntry(engine.LogEntry{Seq: 99, Stream: 2, Time: at, Data: []byte("err\n")}),
			engine.LogEntry{Seq: 7, Stream: 2, Time: at, Data: []byte("err\n")}, false},
		{"zero time survives", encodeEntry(engine.LogEntry{Stream: 1, Data: []byte{0, 1}}),
			engine.LogEntry{Seq: 7, Stream: 1, Data: []byte{0, 1}}, false},
		{"legacy JSON entry decodes", []byte(`{"seq":7,"stream":1,"time":"2026-05-06T07:08:09.00000001Z","data":"aGkK"}`),
			engine.LogEntry{Seq: 7, Stream: 1, Time: at, Data: []byte("hi\n")}, false},
		{"empty value fails", nil, engine.LogEntry{}, true},
		{"unknown version fails", []byte{9, 1, 0, 0}, engine.LogEntry{}, true},
		{"truncated header fails", []byte{entryV1, 1}, engine.LogEntry{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEntry(7, tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got.Seq != tt.want.Seq || got.Stream != tt.want.Stream || !got.Time.Equal(tt.want.Time) || !bytes.Equal(got.Data, tt.want.Data) {
				t.Fatalf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
}

func benchStore(b *testing.B) *Store {
	s, err := Open(filepath.Join(b.TempDir(), "store.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkCreateContainer is the store's part of docker create (synced).
func BenchmarkCreateContainer(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("%064x", i)
		if err := s.CreateContainer(ctx, storetest.NewContainer("default", id, "n"+id[52:])); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendLogs stores 32 KiB output chunks (synced), as the hub does.
func BenchmarkAppendLogs(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if err := s.CreateContainer(ctx, storetest.NewContainer("default", "c1", "n1")); err != nil {
		b.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if _, err := s.AppendLogs(ctx, "default", "c1", []engine.LogEntry{{Stream: engine.Stdout, Time: time.Now(), Data: chunk}}, map[uint32]uint64{1: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
