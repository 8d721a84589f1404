package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

// adminUsage documents the admin subcommands.
const adminUsage = `usage:
  controlplane tokens create --member NAME [--namespace NS] [--role member|admin] [--expires 720h|RFC3339]
  controlplane tokens list
  controlplane tokens revoke ID
  controlplane members set EMAIL --namespace NS [--role member|admin] [--member NAME]
  controlplane members list
  controlplane members remove EMAIL

Each talks to a running control plane (--url https://HOST or unix:///PATH,
env SOCKERLESS_URL, with the admin token --token, env SOCKERLESS_TOKEN),
or with --state-dir DIR to the embedded store of a control plane that is
not running. tokens create prints the token on stdout, once: it is stored
only as a hash.
`

// runAdmin runs "tokens …" or "members …" and returns the exit status.
func runAdmin(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if err := admin(args, getenv, stdout); err != nil {
		fmt.Fprintln(stderr, "controlplane:", err)
		return 1
	}
	return 0
}

func admin(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) < 2 {
		return errors.New(adminUsage)
	}
	what, verb := args[0], args[1]
	fs := flag.NewFlagSet(what+" "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", getenv("SOCKERLESS_URL"), "control plane URL (https://HOST, http://HOST:PORT or unix:///PATH)")
	token := fs.String("token", getenv("SOCKERLESS_TOKEN"), "admin token")
	stateDir := fs.String("state-dir", "", "state directory of a control plane that is not running (embedded store)")
	member := fs.String("member", "", "member name")
	ns := fs.String("namespace", "", "namespace (default: the member name)")
	role := fs.String("role", "member", "member or admin")
	expires := fs.String("expires", "", "expiry: a duration from now (720h) or an RFC 3339 time")
	// Positional arguments may come before or after flags.
	var pos []string
	rest := args[2:]
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("%w\n%s", err, adminUsage)
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos, rest = append(pos, rest[0]), rest[1:]
		}
	}
	c, closeFn, err := adminClient(*base, *token, *stateDir)
	if err != nil {
		return err
	}
	defer closeFn()
	one := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("%s %s takes one argument\n%s", what, verb, adminUsage)
		}
		return pos[0], nil
	}
	switch what + " " + verb {
	case "tokens create":
		var out auth.TokenResponse
		req := auth.TokenRequest{Member: *member, Namespace: *ns, Role: *role, Expires: *expires}
		if err := c.do("POST", auth.TokensPath, req, &out); err != nil {
			return err
		}
		fmt.Fprintln(stdout, out.Token)
		return nil
	case "tokens list":
		var out []auth.TokenResponse
		if err := c.do("GET", auth.TokensPath, nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMEMBER\tNAMESPACE\tROLE\tCREATED\tEXPIRES")
		for _, t := range out {
			exp := "never"
			if !t.Expires.IsZero() {
				exp = t.Expires.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Member, t.Namespace, t.Role, t.Created.Format(time.RFC3339), exp)
		}
		return tw.Flush()
	case "tokens revoke":
		id, err := one()
		if err != nil {
			return err
		}
		return c.do("DELETE", auth.TokensPath+"/"+url.PathEscape(id), nil, nil)
	case "members set":
		p, err := one()
		if err != nil {
			return err
		}
		return c.do("PUT", auth.MembersPath+"/"+url.PathEscape(p), auth.MemberRequest{Member: *member, Namespace: *ns, Role: *role}, nil)
	case "members list":
		var out []auth.Member
		if err := c.do("GET", auth.MembersPath, nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PRINCIPAL\tMEMBER\tNAMESPACE\tROLE")
		for _, m := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Principal, m.Member, m.Namespace, m.Role)
		}
		return tw.Flush()
	case "members remove":
		p, err := one()
		if err != nil {
			return err
		}
		return c.do("DELETE", auth.MembersPath+"/"+url.PathEscape(p), nil, nil)
	}
	return fmt.Errorf("unknown command %q\n%s", what+" "+verb, adminUsage)
}

// apiClient calls the admin API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// adminClient reaches the admin API at base with token, or, with a state
// directory, serves it in-process over that directory's embedded store.
func adminClient(base, token, stateDir string) (*apiClient, func(), error) {
	if stateDir != "" {
		st, err := bolt.Open(filepath.Join(stateDir, "store.db"))
		if err != nil {
			return nil, nil, fmt.Errorf("%w (is a control plane running on it? then use --url and --token)", err)
		}
		const local = "in-process"
		h := auth.New(auth.Config{AdminToken: local, Store: st}).Middleware(auth.NewAdmin(st, nil))
		return &apiClient{base: "http://store", token: local, http: &http.Client{Transport: handlerTransport{h}}}, func() { st.Close() }, nil
	}
	if base == "" {
		return nil, nil, fmt.Errorf("say where the control plane is: --url (SOCKERLESS_URL) or --state-dir\n%s", adminUsage)
	}
	c := &apiClient{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: time.Minute}}
	if path, ok := strings.CutPrefix(base, "unix://"); ok {
		c.base = "http://unix"
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
	} else if token == "" {
		return nil, nil, errors.New("the admin token is required: --token or SOCKERLESS_TOKEN")
	}
	return c, func() {}, nil
}

// do sends a JSON request and decodes a JSON answer into out (if not
// nil); an error status returns the server's message.
func (c *apiClient) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Message string }
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return fmt.Errorf("%s (%d)", e.Message, resp.StatusCode)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// handlerTransport serves requests with an in-process handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}
