package images

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// TestPullsReachOnlyAllowedRegistries: with --registry-allow, a reference
// naming another registry is refused with 403 before any connection.
func TestPullsReachOnlyAllowedRegistries(t *testing.T) {
	dialed := false
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { dialed = true }))
	defer other.Close()
	s, err := New(Config{TargetRepo: "127.0.0.1:1/wrapped", Keychain: authn.NewMultiKeychain(),
		Allow: []string{"docker.io", "*.pkg.dev", "registry.example:5000"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref     string
		allowed bool
	}{
		{"busybox", true},
		{"index.docker.io/library/busybox", true},
		{"us-docker.pkg.dev/p/r/img", true},
		{"registry.example:5000/img", true},
		{"registry.example/img", false},
		{"pkg.dev.evil.example/img", false},
		{"evilpkg.dev/img", false},
		{strings.TrimPrefix(other.URL, "http://") + "/img", false},
		{"169.254.169.254/computemetadata", false},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			ref, _, err := s.resolve(tt.ref)
			if tt.allowed {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if s.allowed(ref) != nil {
					t.Fatal("refused")
				}
				return
			}
			if engine.KindOf(err) != engine.KindForbidden || !strings.Contains(err.Error(), "--registry-allow") {
				t.Fatalf("err %v (kind %v), want forbidden naming --registry-allow", err, engine.KindOf(err))
			}
			if _, err := s.Pull(t.Context(), tt.ref); engine.KindOf(err) != engine.KindForbidden {
				t.Fatalf("pull: %v", err)
			}
		})
	}
	if dialed {
		t.Fatal("a refused pull reached its host")
	}
}

// TestPullErrorsDoNotTellHostsApart: pulling from a closed port, a port
// that hangs up, and a web server that is no registry all answer the same
// (they used to pass the dial or HTTP error through: a port scanner).
func TestPullErrorsDoNotTellHostsApart(t *testing.T) {
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	hangup, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hangup.Close()
	go func() {
		for {
			c, err := hangup.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	garbage, _ := net.Listen("tcp", "127.0.0.1:0")
	defer garbage.Close()
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
			c.Close()
		}
	}()
	s, err := New(Config{TargetRepo: "127.0.0.1:1/wrapped", Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]string{
		"closed port":        closedAddr,
		"hang-up":            hangup.Addr().String(),
		"web server":         strings.TrimPrefix(web.URL, "http://"),
		"not HTTP (ssh-ish)": garbage.Addr().String(),
	}
	var first string
	for what, host := range hosts {
		_, err := s.Pull(t.Context(), host+"/img:1")
		var e *engine.Error
		if !errors.As(err, &e) || e.Kind != engine.KindUnavailable {
			t.Fatalf("%s: %v (kind %v)", what, err, engine.KindOf(err))
		}
		msg := strings.ReplaceAll(e.Message, host, "HOST")
		if first == "" {
			first = msg
		}
		if msg != first {
			t.Fatalf("%s answers %q, another %q", what, msg, first)
		}
	}
	if !strings.Contains(first, "did not answer as a registry") {
		t.Fatalf("message %q", first)
	}
}
