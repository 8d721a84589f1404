package agenthub

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// TestOversizedStartIsRefusedNotSent: a Start or ExecStart over the
// agent's frame limit used to be sent; the agent dropped the connection
// on it and the caller waited for an answer for good. Now the call fails
// at once as invalid and the connection stays up.
func TestOversizedStartIsRefusedNotSent(t *testing.T) {
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, nil)
	a := env.connect(t, "c1", 0)
	sess, err := env.hub.Session(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	big := proto.Process{Args: []string{"echo", strings.Repeat("<", proto.MaxControl/4)}} // JSON escapes '<' as 6 bytes
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sess.Start(ctx, proto.Start{Run: 1, Process: big}); engine.KindOf(err) != engine.KindInvalid || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("start: %v (kind %v), want invalid", err, engine.KindOf(err))
	}
	if _, err := sess.(engine.StreamSession).Exec(ctx, proto.ExecStart{ID: "x1", Process: big}); engine.KindOf(err) != engine.KindInvalid {
		t.Fatalf("exec: %v, want invalid", err)
	}
	a.expectNone(200 * time.Millisecond)
	if !a.isOpen() {
		t.Fatal("the agent's connection was dropped")
	}
}

// TestRefusedDialsAreReported: a dial with a wrong secret or none is told
// to the audit hook, and the connection is closed.
func TestRefusedDialsAreReported(t *testing.T) {
	var mu sync.Mutex
	var reasons []string
	b := newFakeBackend(map[string]string{"c1": "s"})
	env := newTestEnv(t, b, func(h *Hub) {
		h.SetAuthFailed(func(_ *http.Request, reason string) {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
		})
	})
	for _, secret := range []string{"wrong", ""} {
		_, resp, err := env.dial(t, "c1", secret)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("secret %q: err %v resp %v", secret, err, resp)
		}
	}
	env.connect(t, "c1", 0) // the right secret is no failure
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 2 {
		t.Fatalf("reported %v, want the two refusals only", reasons)
	}
}
