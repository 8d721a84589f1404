package dockerapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// repeatReader yields n bytes of c.
type repeatReader struct {
	n int64
	c byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = r.c
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// hugeJSON is prefix + size bytes of 'a' + suffix, streamed.
func hugeJSON(prefix string, size int64, suffix string) io.Reader {
	return io.MultiReader(strings.NewReader(prefix), &repeatReader{n: size, c: 'a'}, strings.NewReader(suffix))
}

// TestLargeBodiesAreRefused: a 100 MB label used to be stored, and every
// later ps and events returned it.
func TestLargeBodiesAreRefused(t *testing.T) {
	srv := newAPI(t)
	if code, body := do(t, srv, "POST", "/containers/create?name=cc", `{"Image":"busybox"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	tests := []struct {
		name, path, prefix, suffix string
	}{
		{"create with a 100 MB label", "/containers/create?name=big", `{"Image":"busybox","Labels":{"x":"`, `"}}`},
		{"exec with a 100 MB argument", "/containers/cc/exec", `{"Cmd":["echo","`, `"]}`},
		{"update with a 100 MB body", "/containers/cc/update", `{"RestartPolicy":{"Name":"`, `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+tt.path, hugeJSON(tt.prefix, 100<<20, tt.suffix))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"message":"request body is larger than 4194304 bytes`) {
				t.Fatalf("status %d %s, want 413 with docker's message", resp.StatusCode, b)
			}
		})
	}
	if code, body := do(t, srv, "GET", "/containers/json?all=1", ""); code != 200 || strings.Contains(body, "big") || len(body) > 10000 {
		t.Fatalf("ps after the refusals: %d, %d bytes", code, len(body))
	}
	if code, _ := do(t, srv, "POST", "/containers/create?name=ok", `{"Image":"busybox","Labels":{"x":"`+strings.Repeat("a", 1<<20)+`"}}`); code != 201 {
		t.Fatalf("a 1 MiB label is refused: %d", code)
	}
}
