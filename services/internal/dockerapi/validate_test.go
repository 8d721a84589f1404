package dockerapi

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestValidationAsDocker: bad values are refused with the status and
// message the Docker engine gives (checked against the machine's dockerd
// 20.10), before anything is stored or run.
func TestValidationAsDocker(t *testing.T) {
	srv := newAPI(t)
	if code, body := do(t, srv, "POST", "/containers/create?name=vv", `{"Image":"busybox"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	hc := func(field string, v int) string {
		return `{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"` + field + `":` + itoa(v) + `}}`
	}
	long := strings.Repeat("a", 40000)
	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"health interval of 1ns", "POST", "/containers/create", hc("Interval", 1), 400, "Interval in Healthcheck cannot be less than 1ms"},
		{"negative health interval", "POST", "/containers/create", hc("Interval", -5), 400, "Interval in Healthcheck cannot be less than 1ms"},
		{"health timeout of 1ns", "POST", "/containers/create", hc("Timeout", 1), 400, "Timeout in Healthcheck cannot be less than 1ms"},
		{"health start period of 1ns", "POST", "/containers/create", hc("StartPeriod", 1), 400, "StartPeriod in Healthcheck cannot be less than 1ms"},
		{"health start interval of 1ns", "POST", "/containers/create", hc("StartInterval", 1), 400, "StartInterval in Healthcheck cannot be less than 1ms"},
		{"negative health retries", "POST", "/containers/create", hc("Retries", -1), 400, "Retries in Healthcheck cannot be negative"},
		{"health interval of 1ms is fine", "POST", "/containers/create", hc("Interval", int(time.Millisecond)), 201, ""},
		{"unknown restart policy", "POST", "/containers/create", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}`, 400, "invalid restart policy 'sometimes'"},
		{"retries with always", "POST", "/containers/create", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":3}}}`, 400, "maximum retry count cannot be used with restart policy 'always'"},
		{"negative retries", "POST", "/containers/create", `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}}`, 400, "maximum retry count cannot be negative"},
		{"restart policy with auto-remove", "POST", "/containers/create", `{"Image":"busybox","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}`, 400, "can't create 'AutoRemove' container with restart policy"},
		{"unknown stop signal", "POST", "/containers/create", `{"Image":"busybox","StopSignal":"SIGFOO"}`, 400, "Invalid signal: SIGFOO"},
		{"update to an unknown restart policy", "POST", "/containers/vv/update", `{"RestartPolicy":{"Name":"sometimes"}}`, 400, "invalid restart policy 'sometimes'"},
		{"update to negative retries", "POST", "/containers/vv/update", `{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}`, 400, "maximum retry count cannot be negative"},
		{"kill with an unknown signal", "POST", "/containers/vv/kill?signal=SIGFOO", "", 400, "Invalid signal: SIGFOO"},
		{"name over the limit", "POST", "/containers/create?name=" + long, `{"Image":"busybox"}`, 400, "Invalid container name"},
		{"rename over the limit", "POST", "/containers/vv/rename?name=" + long, "", 400, "Invalid container name"},
		{"reference over the limit", "GET", "/containers/" + long + "/json", "", 404, "No such container"},
		{"NUL in an archive path (HEAD)", "HEAD", "/containers/vv/archive?path=" + url.QueryEscape("/a\x00b"), "", 400, ""},
		{"NUL in an archive path (GET)", "GET", "/containers/vv/archive?path=" + url.QueryEscape("/a\x00b"), "", 400, "NUL"},
		{"NUL in an archive path (PUT)", "PUT", "/containers/vv/archive?path=" + url.QueryEscape("/a\x00b"), "", 400, "NUL"},
		{"a huge filter", "GET", "/containers/json?filters=" + url.QueryEscape(`{"name":["`+strings.Repeat("(a|b)*", 20000)+`"]}`), "", 400, "invalid filter: longer than"},
		{"a huge prune filter", "POST", "/containers/prune?filters=" + url.QueryEscape(`{"label":["`+long+`"]}`), "", 400, "invalid filter: longer than"},
		{"a fair name filter", "GET", "/containers/json?all=1&filters=" + url.QueryEscape(`{"name":["vv"]}`), "", 200, "vv"},
		{"NUL in an exec's command", "POST", "/containers/vv/exec", `{"Cmd":["a\u0000b"]}`, 400, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, srv, tt.method, tt.path, tt.body)
			if code != tt.status || !strings.Contains(body, tt.message) {
				t.Fatalf("%d %s, want %d with %q", code, trim(body), tt.status, tt.message)
			}
		})
	}
}

func itoa(v int) string {
	return strconv.Itoa(v)
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
