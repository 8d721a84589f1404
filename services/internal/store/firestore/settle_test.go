package firestore

import (
	"bytes"
	"context"
	"errors"
	"path"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
)

// answerLoser loses the answer of the next commit once armed: after the
// commit was applied (as the emulator answers CANCELLED for a commit it
// applied when a listener it notified was closed meanwhile), or before
// it reached Firestore (a connection that failed).
type answerLoser struct {
	armed   atomic.Bool
	applied bool
	code    codes.Code // of the lost answer (of a commit not applied: default UNAVAILABLE)
}

func (l *answerLoser) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if path.Base(method) != "Commit" || !l.armed.CompareAndSwap(true, false) {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	if !l.applied {
		code := l.code
		if code == codes.OK {
			code = codes.Unavailable
		}
		return status.Error(code, "connection reset")
	}
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return err
	}
	return status.Error(l.code, "answer lost")
}

// openLosing opens a fresh store whose commits lose their answers as
// loser says, and another process's store on the same data, which reads
// records afresh.
func openLosing(t *testing.T, loser *answerLoser) (s, other *Store) {
	t.Helper()
	_, root := openFresh(t)
	s, err := Open(t.Context(), testProject, Options{Root: root, unary: loser.unary})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, openTwin(t, root)
}

// A container write whose answer is lost is decided by reading the
// document back: one that landed is done (not a failed docker create that
// leaves its container behind, nor a start claimed twice), one that did
// not is made again, each exactly once.
func TestWriteWithLostAnswer(t *testing.T) {
	for _, lost := range []struct {
		name    string
		applied bool
		code    codes.Code
	}{
		{"answer lost after it landed (CANCELLED)", true, codes.Canceled},
		{"answer lost after it landed (UNAVAILABLE, which the client retries)", true, codes.Unavailable},
		{"answer lost before it landed", false, 0},
	} {
		for _, op := range []string{"create", "update", "update in a transaction", "update with log chunks", "delete"} {
			t.Run(op+", "+lost.name, func(t *testing.T) {
				ctx := t.Context()
				loser := &answerLoser{applied: lost.applied, code: lost.code}
				s, other := openLosing(t, loser)
				c := storetest.NewContainer("a", "c1", "one")
				if op == "create" {
					loser.armed.Store(true)
				}
				creator := s
				if op == "update in a transaction" {
					creator = other // s knows no state of it: it reads it in a transaction
				}
				if err := creator.CreateContainer(ctx, c); err != nil {
					t.Fatalf("create: %v", err)
				}
				switch op {
				case "update", "update in a transaction":
					loser.armed.Store(true)
					if _, err := s.UpdateContainer(ctx, "a", "c1", func(c *engine.Container) error { c.Run++; return nil }); err != nil {
						t.Fatalf("update: %v", err)
					}
				case "update with log chunks":
					// Output past the document's share: its chunks and the
					// container in one commit.
					loser.armed.Store(true)
					big := engine.LogEntry{Stream: engine.Stdout, Data: bytes.Repeat([]byte("x"), 60<<10)}
					if _, _, err := s.AppendLogsUpdate(ctx, "a", "c1", []engine.LogEntry{big, big}, nil,
						func(c *engine.Container) error { c.Run++; return nil }); err != nil {
						t.Fatalf("append: %v", err)
					}
					logs, err := other.ReadLogs(ctx, "a", "c1", 0, 0)
					if err != nil || len(logs) != 2 {
						t.Fatalf("after the append: %d entries, %v; want 2 (stored once)", len(logs), err)
					}
				case "delete":
					loser.armed.Store(true)
					if err := s.DeleteContainer(ctx, "a", "c1"); err != nil {
						t.Fatalf("delete: %v", err)
					}
				}
				if loser.armed.Load() {
					t.Fatal("the write made no commit")
				}
				got, err := other.GetContainer(ctx, "a", "c1")
				if op == "delete" {
					if !errors.Is(err, engine.ErrNotFound) {
						t.Fatalf("after the delete: %v, %v; want not found", got, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("after the %s: %v", op, err)
				}
				if want := map[string]uint32{"create": 0, "update": 1, "update in a transaction": 1, "update with log chunks": 1}[op]; got.Run != want {
					t.Fatalf("after the %s: run %d, want %d (applied once)", op, got.Run, want)
				}
			})
		}
	}
}
