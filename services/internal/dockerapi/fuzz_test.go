package dockerapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
	"github.com/sockerless/sockerless/services/internal/volumes"
)

// The fuzz targets drive every JSON body and query decoder of the API
// through the router, over the real engine, network plane, volume service
// and embedded store. Whatever the input, the answer must be a status
// below 500 (or 501 for what is not supported) with Docker's JSON error
// body: a 500 means an input reached a failure no check names (as names
// over the key limit and NUL bytes in paths did). `go test` runs them on
// the seed corpus in testdata/fuzz; `go test -fuzz FuzzX` explores.

// fuzzAPI is an API with a container "fz" and a network "fznet".
func fuzzAPI(tb testing.TB) http.Handler {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	err = st.PutImage(context.Background(), &engine.Image{
		ID: "sha256:" + strings.Repeat("ab", 32), RepoTags: []string{"busybox:latest"}, Created: time.Unix(1700000000, 0),
		OS: "linux", Arch: "amd64", Config: &container.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nets := netplane.New(netplane.Config{Store: st, Containers: st, Logger: quiet})
	tb.Cleanup(func() { nets.Close() })
	vols := volumes.New(volumes.Config{Store: st, Logger: quiet})
	e := engine.New(engine.Config{Store: st, Agents: noAgents{}, Networks: nets, Volumes: vols, Logger: quiet})
	nets.SetEvents(e)
	tb.Cleanup(func() { e.Close() })
	h := New(e, Config{Networks: nets, Volumes: vols, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}) // a 500's cause shows
	for _, setup := range []struct{ path, body string }{
		{"/containers/create?name=fz", `{"Image":"busybox"}`},
		{"/networks/create", `{"Name":"fznet"}`},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", setup.path, strings.NewReader(setup.body)))
		if w.Code >= 300 {
			tb.Fatalf("setup %s: %d %s", setup.path, w.Code, w.Body)
		}
	}
	return h
}

// serveFuzz sends one request and checks the answer's shape.
func serveFuzz(t *testing.T, h http.Handler, method, target, body string) {
	t.Helper()
	if strings.ContainsAny(target, " \r\n\x00") {
		return // not a request line an HTTP server would parse
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return
	}
	r := &http.Request{Method: method, URL: u, RequestURI: target, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "x"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(ctx))
	if w.Code >= 500 && w.Code != http.StatusNotImplemented && w.Code != http.StatusServiceUnavailable {
		t.Fatalf("%s %s %q: %d %s", method, target, body, w.Code, w.Body)
	}
	if w.Code >= 400 {
		var e struct{ Message *string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Message == nil {
			t.Fatalf("%s %s %q: %d without docker's error body: %q", method, target, body, w.Code, w.Body)
		}
	}
}

func FuzzContainersCreate(f *testing.F) {
	f.Add("n1", `{"Image":"busybox","Cmd":["true"],"Env":["A=1"],"Labels":{"a":"b"}}`)
	f.Add("", `{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Interval":1}}`)
	f.Add("x", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1},"PortBindings":{"80/tcp":[{"HostPort":"0"}]}}}`)
	f.Add("y", `{"Image":"busybox","ExposedPorts":{"99999/tcp":{}},"StopSignal":"SIGFOO","NetworkingConfig":{"EndpointsConfig":{"fznet":{"Aliases":["a"]}}}}`)
	f.Add("z", `{"Image":"busybox","HostConfig":{"Binds":["v:/data"],"Mounts":[{"Type":"volume","Source":"w","Target":"/w"}],"Tmpfs":{"/t":"size=1m"}}}`)
	f.Add("/"+strings.Repeat("a", 300), `{"Image":"busybox"}`)
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, name, body string) {
		serveFuzz(t, h, "POST", "/containers/create?name="+url.QueryEscape(name), body)
	})
}

func FuzzExecCreate(f *testing.F) {
	f.Add(`{"Cmd":["sh","-c","echo"],"Env":["A=1"],"WorkingDir":"/","User":"root","AttachStdout":true}`)
	f.Add(`{"Cmd":[]}`)
	f.Add(`{"Cmd":["a\u0000b"]}`)
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		serveFuzz(t, h, "POST", "/containers/fz/exec", body)
	})
}

func FuzzExecStart(f *testing.F) {
	f.Add(`{"Detach":true,"Tty":false}`)
	f.Add(`{"ConsoleSize":[1,2]}`)
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		serveFuzz(t, h, "POST", "/exec/nosuch/start", body)
	})
}

func FuzzContainersUpdate(f *testing.F) {
	f.Add(`{"RestartPolicy":{"Name":"always"}}`)
	f.Add(`{"Memory":1048576,"NanoCpus":1000000000,"CpuShares":2}`)
	f.Add(`{"RestartPolicy":{"Name":"x","MaximumRetryCount":-5}}`)
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		serveFuzz(t, h, "POST", "/containers/fz/update", body)
	})
}

func FuzzNetworksCreate(f *testing.F) {
	f.Add(`{"Name":"n","Driver":"bridge","Labels":{"a":"b"},"IPAM":{"Config":[{"Subnet":"10.1.0.0/24"}]}}`)
	f.Add(`{"Name":"","Internal":true,"Attachable":true}`)
	f.Add(`{"Name":"m","IPAM":{"Config":[{"Subnet":"999.1.0.0/33","Gateway":"x"}]}}`)
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		serveFuzz(t, h, "POST", "/networks/create", body)
	})
}

func FuzzNetworksConnect(f *testing.F) {
	f.Add(`{"Container":"fz","EndpointConfig":{"Aliases":["x"],"IPAMConfig":{"IPv4Address":"127.1.2.3"}}}`)
	f.Add(`{"Container":"fz","Force":true}`)
	f.Add(`{"Container":""}`)
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		serveFuzz(t, h, "POST", "/networks/fznet/connect", body)
		serveFuzz(t, h, "POST", "/networks/fznet/disconnect", body)
	})
}

func FuzzVolumesCreate(f *testing.F) {
	f.Add(`{"Name":"v1","Driver":"local","Labels":{"a":"b"},"DriverOpts":{"o":"x"}}`)
	f.Add(`{"Name":"../etc"}`)
	f.Add(`{}`)
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		serveFuzz(t, h, "POST", "/volumes/create", body)
	})
}

// FuzzFilters drives ?filters= of every list and prune.
func FuzzFilters(f *testing.F) {
	f.Add(`{"name":["fz"],"status":["created"]}`)
	f.Add(`{"label":{"a=b":true},"until":{"10m":true}}`)
	f.Add(`{"name":["(a|b)*["]}`)
	f.Add(`{"dangling":["true"],"driver":["local"],"before":["fz"],"since":["fz"]}`)
	f.Add(`[1,2]`)
	h := fuzzAPI(f)
	targets := []struct{ method, path string }{
		{"GET", "/containers/json?all=1"}, {"GET", "/images/json"}, {"GET", "/networks"}, {"GET", "/volumes"},
		{"POST", "/containers/prune"}, {"POST", "/networks/prune"}, {"POST", "/volumes/prune"}, {"POST", "/images/prune"},
	}
	f.Fuzz(func(t *testing.T, filters string) {
		for _, tg := range targets {
			serveFuzz(t, h, tg.method, tg.path+sep(tg.path)+"filters="+url.QueryEscape(filters), "")
		}
	})
}

// FuzzArchivePath drives ?path= of docker cp's routes.
func FuzzArchivePath(f *testing.F) {
	f.Add("/etc/passwd")
	f.Add("a\x00b")
	f.Add("../../..")
	f.Add("")
	h := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, p string) {
		q := "/containers/fz/archive?path=" + url.QueryEscape(p)
		serveFuzz(t, h, "HEAD", q, "")
		serveFuzz(t, h, "GET", q, "")
		serveFuzz(t, h, "PUT", q, "")
	})
}

// FuzzQueries drives the scalar query parameters of the container routes.
func FuzzQueries(f *testing.F) {
	f.Add("signal=SIGTERM&t=5&condition=not-running&h=24&w=80&name=fz2&tail=10&since=1&until=2&timestamps=1&stdout=1")
	f.Add("signal=99&t=-1&condition=x&h=-1&w=99999999999&tail=all&since=abc")
	f.Add("ps_args=aux&stream=0&one-shot=1&force=1&v=1&link=1")
	h := fuzzAPI(f)
	routes := []struct{ method, path string }{
		{"POST", "/containers/fz/kill"}, {"POST", "/containers/fz/stop"},
		{"POST", "/containers/fz/resize"}, {"POST", "/containers/fz/rename"}, {"GET", "/containers/fz/logs"},
		{"GET", "/containers/fz/top"}, {"GET", "/containers/fz/json"}, {"POST", "/containers/fz/pause"},
		{"GET", "/containers/fz/changes"}, {"POST", "/exec/nosuch/resize"}, {"GET", "/images/busybox/json"},
		{"GET", "/networks/fznet"}, {"GET", "/volumes/nosuch"}, {"DELETE", "/containers/nosuch"},
		{"POST", "/images/busybox/tag"}, {"GET", "/system/df"},
	}
	f.Fuzz(func(t *testing.T, query string) {
		for _, rt := range routes {
			serveFuzz(t, h, rt.method, rt.path+"?"+query, "")
		}
	})
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}
