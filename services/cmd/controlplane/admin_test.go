package main

import (
	"bytes"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := admin(args, func(k string) string { return env[k] }, &out)
	return out.String(), err
}

func TestTokensCLIOnStateDir(t *testing.T) {
	dir := t.TempDir()
	tok, err := runCLI(t, nil, "tokens", "create", "--state-dir", dir, "--member", "alice", "--expires", "24h")
	if err != nil || !strings.HasPrefix(tok, "skl_") {
		t.Fatalf("create: %q, %v", tok, err)
	}
	list, err := runCLI(t, nil, "tokens", "list", "--state-dir", dir)
	if err != nil || !strings.Contains(list, "alice") || strings.Contains(list, strings.TrimSpace(tok)) {
		t.Fatalf("list: %q, %v", list, err)
	}
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	if _, err := runCLI(t, nil, "tokens", "revoke", id, "--state-dir", dir); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := runCLI(t, nil, "tokens", "revoke", id, "--state-dir", dir); err == nil || !strings.Contains(err.Error(), "No such token") {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := runCLI(t, nil, "members", "set", "alice@example.com", "--namespace", "alice", "--state-dir", dir); err != nil {
		t.Fatalf("members set: %v", err)
	}
	if out, err := runCLI(t, nil, "members", "list", "--state-dir", dir); err != nil || !strings.Contains(out, "alice@example.com") {
		t.Fatalf("members list: %q, %v", out, err)
	}
}

func TestTokensCLIThroughAPI(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const admin = "admin-token-0123456789abcdef"
	srv := httptest.NewServer(auth.New(auth.Config{AdminToken: admin, Store: st}).Middleware(auth.NewAdmin(st, nil)))
	defer srv.Close()
	env := map[string]string{"SOCKERLESS_URL": srv.URL, "SOCKERLESS_TOKEN": admin}
	tok, err := runCLI(t, env, "tokens", "create", "--member", "bob", "--namespace", "bob")
	if err != nil || !strings.HasPrefix(tok, "skl_") {
		t.Fatalf("create: %q, %v", tok, err)
	}
	// A member's token is no admin's.
	_, err = runCLI(t, map[string]string{"SOCKERLESS_URL": srv.URL, "SOCKERLESS_TOKEN": strings.TrimSpace(tok)}, "tokens", "list")
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("list with a member token: %v, want 403", err)
	}
	if _, err := runCLI(t, env, "tokens", "create", "--member", "x", "--role", "root"); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("bad role: %v", err)
	}
}
