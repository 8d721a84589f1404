package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// member is a team member with an issued token and a forwarder of her own.
type member struct {
	name, ns, token, id string
	host                string // DOCKER_HOST of her forwarder
}

// newMember issues a token through the admin API and starts a forwarder
// with it; the test's end stops the forwarder.
func newMember(t *testing.T, s *stack, name string) member {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	m := member{name: name, ns: name + "-" + hex.EncodeToString(b)}
	body, _ := json.Marshal(map[string]string{"member": name, "namespace": m.ns, "role": "member"})
	resp, out := s.apiRequest(t, "POST", "/sockerless/v1/tokens", body, true)
	var created struct{ ID, Token string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(out, &created) != nil || created.Token == "" {
		t.Fatalf("issue %s's token: %d %s", name, resp.StatusCode, out)
	}
	m.token, m.id = created.Token, created.ID
	sock := filepath.Join(s.dir, "fwd-"+m.ns+".sock")
	fw, err := startProc(filepath.Join(s.dir, "forwarder-"+m.ns+".log"), filepath.Join(s.bin, "forwarder"),
		"--listen", "unix://"+sock, "--upstream", "http://"+s.tcp, "--token", m.token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fw.stop)
	m.host = "unix://" + sock
	return m
}

// as sends a raw request to the control plane with m's token.
func (m member) as(t *testing.T, s *stack, method, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.tcp+path, nil)
	req.Header.Set("Authorization", "Bearer "+m.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, []byte(out.String())
}

// TestTeamTokensAndNamespaces is two members with their own tokens and
// forwarders, using the docker CLI: each has a container named db, neither
// sees or touches the other's, a member's token is refused on admin
// endpoints, a container's cost shows in inspect and in the usage
// endpoint, and a revoked token fails at once.
func TestTeamTokensAndNamespaces(t *testing.T) {
	s := requireStack(t)
	alice, bob := newMember(t, s, "alice"), newMember(t, s, "bob")

	aliceDB := strings.TrimSpace(mustDocker(t, alice.host, "create", "--name", "db", "-e", "DB_PASSWORD=alice-secret", "busybox", "sleep", "300"))
	defer docker(t, alice.host, "rm", "-f", aliceDB)
	bobDB := strings.TrimSpace(mustDocker(t, bob.host, "create", "--name", "db", "busybox", "sleep", "300"))
	defer docker(t, bob.host, "rm", "-f", bobDB)
	if aliceDB == bobDB {
		t.Fatal("two members' db are one container")
	}

	// Each sees only her own db.
	for _, m := range []struct {
		member
		mine, theirs string
	}{{alice, aliceDB, bobDB}, {bob, bobDB, aliceDB}} {
		ps := mustDocker(t, m.host, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}")
		if !strings.Contains(ps, m.mine+" db") || strings.Contains(ps, m.theirs) {
			t.Fatalf("%s's docker ps -a:\n%s", m.name, ps)
		}
		if got := inspect(t, m.host, "db")["Id"]; got != m.mine {
			t.Fatalf("%s's db is %v, want %s", m.name, got, m.mine)
		}
	}

	// Bob cannot read alice's db by ID: it answers as a missing container.
	for _, args := range [][]string{
		{"inspect", "--type", "container", aliceDB},
		{"logs", aliceDB},
		{"start", aliceDB},
		{"rm", "-f", aliceDB},
		{"exec", aliceDB, "env"},
		{"rename", aliceDB, "stolen"},
	} {
		r := docker(t, bob.host, args...)
		// docker rm -f exits 0 on a missing container, as on Docker.
		if (r.code == 0 && args[0] != "rm") || !strings.Contains(r.stderr, "No such container") || strings.Contains(r.stdout+r.stderr, "alice-secret") {
			t.Fatalf("bob's docker %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		missing := docker(t, bob.host, append(args[:len(args)-1:len(args)-1], strings.Repeat("f", 64))...)
		if strings.ReplaceAll(missing.stderr, strings.Repeat("f", 64), aliceDB) != r.stderr && args[0] != "rename" {
			t.Fatalf("bob's docker %s on alice's db says %q, on a missing one %q", args[0], r.stderr, missing.stderr)
		}
	}
	if env := inspect(t, alice.host, "db")["Config"].(map[string]any)["Env"]; !strings.Contains(fmt.Sprint(env), "DB_PASSWORD=alice-secret") {
		t.Fatalf("alice's db lost its env after bob's attempts: %v", env)
	}

	// A member's token gets 403 on the admin endpoints.
	for _, p := range []struct{ method, path string }{{"GET", "/sockerless/v1/tokens"}, {"POST", "/sockerless/v1/gc?all=true"}, {"GET", "/sockerless/v1/store-stats"}} {
		if resp, body := alice.as(t, s, p.method, p.path); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("alice's %s %s: %d %s", p.method, p.path, resp.StatusCode, body)
		}
	}
	// The token list shows both members without secrets.
	resp, list := s.apiRequest(t, "GET", "/sockerless/v1/tokens", nil, true)
	if resp.StatusCode != 200 || !strings.Contains(string(list), alice.id) || strings.Contains(string(list), alice.token) {
		t.Fatalf("token list: %d %s", resp.StatusCode, list)
	}

	// Cost: a run of alice's shows in inspect and in her usage, not bob's.
	since := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	mustDocker(t, alice.host, "run", "--name", "job", "busybox", "sh", "-c", "echo done")
	defer docker(t, alice.host, "rm", "-f", "job")
	label := strings.TrimSpace(mustDocker(t, alice.host, "inspect", "-f", `{{index .Config.Labels "sockerless.cost"}}`, "job"))
	var cost struct {
		VCPUSeconds, GiBSeconds, USD float64
		Invocations                  int
	}
	if err := json.Unmarshal([]byte(label), &cost); err != nil || cost.Invocations != 1 || cost.VCPUSeconds <= 0 || cost.GiBSeconds <= 0 || cost.USD <= 0 {
		t.Fatalf("sockerless.cost of job: %q (%v)", label, err)
	}
	resp, body := alice.as(t, s, "GET", "/sockerless/v1/usage?since="+since)
	var usage struct {
		Namespace   string
		Invocations int
		USD         float64
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &usage) != nil || usage.Namespace != alice.ns || usage.Invocations < 1 || usage.USD <= 0 {
		t.Fatalf("alice's usage: %d %s", resp.StatusCode, body)
	}
	if resp, body := bob.as(t, s, "GET", "/sockerless/v1/usage?since="+since); resp.StatusCode != 200 || !strings.Contains(string(body), `"invocations":0`) {
		t.Fatalf("bob's usage: %d %s", resp.StatusCode, body)
	}

	// A revoked token fails at once.
	if resp, body := s.apiRequest(t, "DELETE", "/sockerless/v1/tokens/"+bob.id, nil, true); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke bob: %d %s", resp.StatusCode, body)
	}
	if r := docker(t, bob.host, "ps"); r.code == 0 || !strings.Contains(r.stderr, "Unauthorized") {
		t.Fatalf("bob's docker ps after revoke: exit %d %s%s", r.code, r.stdout, r.stderr)
	}

}

// TestTeamQuotaAndRateLimit runs a control plane that lets a namespace
// run one container and a token send 40 requests a minute.
func TestTeamQuotaAndRateLimit(t *testing.T) {
	s := otherStack(t, []string{"--quota-running", "1", "--rate-limit", "40"}, nil)
	alice := newMember(t, s, "alice")
	first := strings.TrimSpace(mustDocker(t, alice.host, "run", "-d", "busybox", "sleep", "300"))
	defer docker(t, s.direct, "rm", "-f", first)
	r := docker(t, alice.host, "run", "-d", "--name", "second", "busybox", "sleep", "300")
	if r.code == 0 || !strings.Contains(r.stderr, "quota exceeded") || !strings.Contains(r.stderr, "--quota-running") {
		t.Fatalf("second run over the quota: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	// The admin's namespace has its own quota.
	other := strings.TrimSpace(mustDocker(t, s.direct, "run", "-d", "busybox", "sleep", "300"))
	docker(t, s.direct, "rm", "-f", other)

	limited := 0
	var retry string
	for range 60 {
		resp, _ := alice.as(t, s, "GET", "/_ping")
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			retry = resp.Header.Get("Retry-After")
		}
	}
	if limited == 0 || retry == "" {
		t.Fatalf("60 pings in a row: %d refused (Retry-After %q), want some 429s with Retry-After", limited, retry)
	}
	// Another token is not slowed by alice's.
	bob := newMember(t, s, "bob")
	if resp, body := bob.as(t, s, "GET", "/_ping"); resp.StatusCode != 200 {
		t.Fatalf("bob's ping: %d %s", resp.StatusCode, body)
	}
}
