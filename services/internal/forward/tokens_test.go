package forward

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

// A token source (forwarder --google) gives each request its current
// token; when it fails, the request goes without one.
func TestTokenSourcePerRequest(t *testing.T) {
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	var n atomic.Int32
	f, err := New(Config{Upstream: u, Tokens: func() (string, error) {
		switch n.Add(1) {
		case 1:
			return "id-token-1", nil
		case 2:
			return "id-token-2", nil
		}
		return "", errors.New("credentials gone")
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/_ping", nil)
		r.Header.Set("Authorization", "Bearer client-supplied")
		f.ServeHTTP(w, r)
	}
	want := []string{"Bearer id-token-1", "Bearer id-token-2", "Bearer client-supplied"}
	if len(seen) != 3 || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("upstream saw %q, want %q", seen, want)
	}
}
