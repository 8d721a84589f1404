package instances

import (
	"fmt"
	"net"
	"strings"
)

// freePort returns a TCP port free on the host right now: an instance's
// PORT (in its own network namespace any port would do, but one free on
// the host is none of the host ports relayed into the instance).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// envList is an ordered environment where a later KEY=… replaces an earlier.
type envList struct {
	keys []string
	vals map[string]string
}

func newEnv() *envList { return &envList{vals: map[string]string{}} }

func (e *envList) set(kv string) {
	k, v, _ := strings.Cut(kv, "=")
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.keys))
	for _, k := range e.keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}
