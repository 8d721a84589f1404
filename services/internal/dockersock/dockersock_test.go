package dockersock

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/engine"
)

type store map[string]*engine.Container

func (s store) GetContainer(_ context.Context, ns, ref string) (*engine.Container, error) {
	if c, ok := s[ns+"/"+ref]; ok {
		return c, nil
	}
	return nil, engine.Errorf(engine.KindNotFound, "No such container: %s", ref)
}

func TestConnectServesTheAPIAsTheContainer(t *testing.T) {
	st := store{"team/c1": {ID: "c1", Namespace: "team", Client: "fwd-1",
		Mounts: []engine.Mount{{Type: engine.MountDockerSocket, Source: "/var/run/docker.sock", Destination: "/run/d.sock"}}},
		"team/c2": {ID: "c2", Namespace: "team"}}
	ns := func(r *http.Request) string { return auth.Namespace(r.Context()) }
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := FromContext(r.Context())
		_, _ = io.WriteString(w, ns(r)+" "+c.Container+" "+c.Client+" "+c.Sockets[0])
	})
	s := New(context.Background(), st, api, slog.New(slog.DiscardHandler))
	defer s.Close()

	conn, err := s.Connect(context.Background(), "team", "c1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", "http://docker/containers/json", nil)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "team c1 fwd-1 /run/d.sock" {
		t.Fatalf("served as %q", b)
	}

	if _, err := s.Connect(context.Background(), "other", "c1"); err == nil {
		t.Fatal("a container of another namespace got a socket")
	}
	if _, err := s.Connect(context.Background(), "team", "c2"); err == nil {
		t.Fatal("a container without a Docker socket bind got the API")
	}
	r, _ := http.NewRequest("GET", "/", nil)
	if got := ns(r); got != engine.DefaultNamespace {
		t.Fatalf("a request not through a socket is in %q", got)
	}
}
