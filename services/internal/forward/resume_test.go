package forward

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/sockerless/sockerless/services/internal/resume"
)

// A followed log stream that the control plane cuts is asked for again
// with its anchor and the bytes already sent; the client gets it whole.
func TestLogsFollowResumesACutStream(t *testing.T) {
	const full = "0123456789abcdef"
	tests := []struct {
		name string
		cuts []int // where each attempt cuts, in bytes of the full stream
	}{
		{"no cut", nil},
		{"one cut", []int{4}},
		{"two cuts, one before any byte", []int{4, 4, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var attempts []http.Header
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n := len(attempts)
				attempts = append(attempts, r.Header.Clone())
				mu.Unlock()
				if n > 0 && r.Header.Get(resume.HeaderAnchor) != "42" {
					http.Error(w, "no anchor", http.StatusBadRequest)
					return
				}
				skip, _ := resume.Parse(r.Header.Get(resume.HeaderSkip))
				w.Header().Set(resume.HeaderAnchor, "42")
				w.WriteHeader(http.StatusOK)
				end := len(full)
				if n < len(tt.cuts) {
					end = tt.cuts[n]
				}
				_, _ = io.WriteString(w, full[skip:end])
				w.(http.Flusher).Flush()
				if end < len(full) {
					panic(http.ErrAbortHandler)
				}
			}))
			defer up.Close()
			u, _ := url.Parse(up.URL)
			sock, _ := startForwarder(t, u, "")
			resp, err := unixClient(sock).Get("http://docker/v1.50/containers/c/logs?follow=1&stdout=1")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || string(got) != full {
				t.Fatalf("client got %q, %v; want %q", got, err, full)
			}
			if resp.Header.Get(resume.HeaderAnchor) != "" {
				t.Errorf("the anchor header reached the client")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(attempts) != len(tt.cuts)+1 {
				t.Fatalf("%d upstream requests, want %d", len(attempts), len(tt.cuts)+1)
			}
			for i, h := range attempts[1:] {
				if want := strconv.Itoa(tt.cuts[i]); h.Get(resume.HeaderSkip) != want {
					t.Errorf("attempt %d skipped %q bytes, want %s", i+2, h.Get(resume.HeaderSkip), want)
				}
			}
		})
	}
}

// Requests other than logs -f are not resumed.
func TestFollowsLogs(t *testing.T) {
	tests := []struct {
		method, target string
		want           bool
	}{
		{"GET", "/containers/c/logs?follow=1", true},
		{"GET", "/v1.43/containers/c/logs?follow=true&stdout=1", true},
		{"GET", "/containers/c/logs?stdout=1", false},
		{"GET", "/containers/c/json?follow=1", false},
		{"POST", "/containers/c/logs?follow=1", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.target, nil)
		if got := followsLogs(r); got != tt.want {
			t.Errorf("followsLogs(%s %s) = %v, want %v", tt.method, tt.target, got, tt.want)
		}
	}
}

// A docker events stream that the control plane cuts is asked for again
// since the last event sent; events the client has are not sent twice.
func TestEventsResumeACutStream(t *testing.T) {
	ev := func(nano int64, id string) string {
		return `{"Type":"container","Action":"start","Actor":{"ID":"` + id + `"},"time":` + strconv.FormatInt(nano/1e9, 10) + `,"timeNano":` + strconv.FormatInt(nano, 10) + "}\n"
	}
	const t1, t2, t3 = 1700000000_000000001, 1700000000_500000000, 1700000001_000000007
	var mu sync.Mutex
	var sinces []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(sinces)
		sinces = append(sinces, r.URL.Query().Get("since"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
		if n == 0 {
			io.WriteString(w, ev(t1, "a")+ev(t2, "b"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		// since is inclusive: the last event comes again.
		io.WriteString(w, ev(t2, "b")+ev(t3, "c"))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	sock, _ := startForwarder(t, u, "")
	resp, err := unixClient(sock).Get("http://docker/v1.50/events?filters=%7B%7D")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || string(got) != ev(t1, "a")+ev(t2, "b")+ev(t3, "c") {
		t.Fatalf("client got %q, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sinces) != 2 || sinces[0] != "" || sinces[1] != "1700000000.500000000" {
		t.Fatalf("since of the requests: %q", sinces)
	}
}
