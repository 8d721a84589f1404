package controlplane

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/auth"
)

func TestRateLimitPerToken(t *testing.T) {
	h := rateLimit(3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	send := func(id *auth.Identity) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/_ping", nil)
		if id != nil {
			r = r.WithContext(auth.WithIdentity(r.Context(), *id))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	alice := &auth.Identity{Member: "alice", Namespace: "alice", Role: auth.RoleMember, TokenID: "aaaaaaaaaaaa"}
	bob := &auth.Identity{Member: "bob", Namespace: "bob", Role: auth.RoleMember, TokenID: "bbbbbbbbbbbb"}
	admin := &auth.Identity{Member: "admin", Namespace: auth.DefaultNamespace, Role: auth.RoleAdmin}
	for i := range 3 {
		if w := send(alice); w.Code != 204 {
			t.Fatalf("alice's request %d: %d", i+1, w.Code)
		}
	}
	w := send(alice)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("alice's 4th request: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := send(bob); w.Code != 204 {
		t.Fatalf("bob is limited by alice's requests: %d", w.Code)
	}
	for range 10 {
		if w := send(admin); w.Code != 204 {
			t.Fatalf("the bootstrap admin is limited: %d", w.Code)
		}
		if w := send(nil); w.Code != 204 {
			t.Fatalf("an agent dial is limited: %d", w.Code)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"2026-11-01T00:00:00Z": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"24h":                  now.Add(-24 * time.Hour),
		"1700000000":           time.Unix(1700000000, 0),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("since %q = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5h", "12:00"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("since %q accepted", bad)
		}
	}
}
