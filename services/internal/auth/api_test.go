package auth_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

const adminToken = "bootstrap-admin-token-0123456789"

// stack is the admin API and a namespace echo behind the authenticator,
// as the control plane mounts them.
func stack(t *testing.T) http.Handler {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mux := http.NewServeMux()
	admin := auth.NewAdmin(st, nil)
	mux.Handle(auth.TokensPath, admin)
	mux.Handle(auth.TokensPath+"/", admin)
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(id)
	})
	return auth.New(auth.Config{AdminToken: adminToken, Store: st}).Middleware(mux)
}

func call(t *testing.T, h http.Handler, method, path, token string, body any) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r := httptest.NewRequest(method, path, rd)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var m map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	return w, m
}

func TestTokenLifecycle(t *testing.T) {
	h := stack(t)
	w, created := call(t, h, "POST", auth.TokensPath, adminToken, map[string]string{"member": "alice", "namespace": "alice", "role": "member"})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	tok, _ := created["token"].(string)
	id, _ := created["id"].(string)
	if tok == "" || id == "" || !strings.Contains(tok, id) {
		t.Fatalf("create answered %s", w.Body)
	}

	w, who := call(t, h, "GET", "/whoami", tok, nil)
	if w.Code != 200 || who["member"] != "alice" || who["namespace"] != "alice" || who["role"] != "member" {
		t.Fatalf("whoami with alice's token: %d %s", w.Code, w.Body)
	}
	w, _ = call(t, h, "GET", "/whoami", "bEaReR-is-not-a-token", nil)
	if w.Code != 401 {
		t.Fatalf("garbage token: %d", w.Code)
	}

	for _, c := range []struct{ method, path string }{{"GET", auth.TokensPath}, {"POST", auth.TokensPath}, {"DELETE", auth.TokensPath + "/" + id}} {
		w, m := call(t, h, c.method, c.path, tok, map[string]string{"member": "mallory", "role": "admin"})
		if w.Code != http.StatusForbidden || m["message"] == nil {
			t.Fatalf("member %s %s: %d %s, want 403 with a message", c.method, c.path, w.Code, w.Body)
		}
	}

	w, _ = call(t, h, "GET", auth.TokensPath, adminToken, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), id) || strings.Contains(w.Body.String(), tok[len(tok)-20:]) || strings.Contains(w.Body.String(), "hash") {
		t.Fatalf("list: %d %s (want the ID, neither secret nor hash)", w.Code, w.Body)
	}

	w, _ = call(t, h, "DELETE", auth.TokensPath+"/"+id, adminToken, nil)
	if w.Code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	w, _ = call(t, h, "GET", "/whoami", tok, nil)
	if w.Code != 401 {
		t.Fatalf("revoked token still works: %d", w.Code)
	}
	w, m := call(t, h, "DELETE", auth.TokensPath+"/"+id, adminToken, nil)
	if w.Code != 404 || !strings.Contains(m["message"].(string), "No such token") {
		t.Fatalf("second revoke: %d %s", w.Code, w.Body)
	}
}

func TestTokenRequestsRefused(t *testing.T) {
	h := stack(t)
	for name, body := range map[string]any{
		"unknown role":       map[string]string{"member": "a", "role": "root"},
		"no member":          map[string]string{"namespace": "a"},
		"bad namespace":      map[string]string{"member": "a", "namespace": "../b"},
		"expiry in the past": map[string]string{"member": "a", "expires": "2001-01-01T00:00:00Z"},
		"bad expiry":         map[string]string{"member": "a", "expires": "tomorrow"},
		"unknown field":      map[string]string{"member": "a", "scope": "all"},
	} {
		t.Run(name, func(t *testing.T) {
			w, m := call(t, h, "POST", auth.TokensPath, adminToken, body)
			if w.Code != 400 || m["message"] == nil {
				t.Fatalf("%d %s, want 400 with a message", w.Code, w.Body)
			}
		})
	}
}

func TestExpiredTokenFails(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &auth.Token{Member: "ci", Namespace: "ci", Role: auth.RoleMember}
	now := time.Now()
	secret, _ := auth.NewToken(rec, now)
	rec.Expires = now.Add(time.Minute)
	if err := st.PutToken(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	clock := now
	a := auth.New(auth.Config{Store: st, Now: func() time.Time { return clock }})
	if _, err := a.Identify(t.Context(), secret); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	clock = now.Add(time.Minute)
	if _, err := a.Identify(t.Context(), secret); err != auth.ErrUnauthorized {
		t.Fatalf("at expiry: %v, want ErrUnauthorized", err)
	}
	// A token with its ID but another secret is refused too.
	forged := secret[:len(secret)-1] + "0"
	if forged == secret {
		forged = secret[:len(secret)-1] + "1"
	}
	clock = now
	if _, err := a.Identify(t.Context(), forged); err != auth.ErrUnauthorized {
		t.Fatalf("forged secret: %v", err)
	}
}

func TestForContainerActsInTheOwnersNamespace(t *testing.T) {
	ctx := auth.ForContainer(t.Context(), "alice", "c0ffee")
	id, ok := auth.FromContext(ctx)
	if !ok || id.Namespace != "alice" || id.Admin() || auth.Namespace(ctx) != "alice" {
		t.Fatalf("identity %+v", id)
	}
	if auth.Namespace(t.Context()) != auth.DefaultNamespace {
		t.Fatal("a context without identity is not the default namespace")
	}
}
