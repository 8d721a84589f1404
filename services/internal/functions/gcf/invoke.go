package gcf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// StatusError is a non-2xx answer to an invocation.
type StatusError struct {
	Code int
	// Body is the start of the response body.
	Body string
}

// Error says the status and the start of the body.
func (e *StatusError) Error() string {
	return fmt.Sprintf("status %d: %s", e.Code, e.Body)
}

// Invoke POSTs inv as JSON to the function at fnURL and returns when the
// response ends: nil for a 2xx answer (the agent let the instance go), an
// error for anything else. The POST has no timeout of its own; ctx ends it.
// A 429, 502, 503 or 504 (no instance, instance failed, timeout) is a
// KindUnavailable *engine.Error wrapping a *StatusError; a 429 or 409 (an
// instance that serves another container) also wraps engine.ErrBusy.
func (d *Driver) Invoke(ctx context.Context, fnURL string, inv proto.Invocation) error {
	body, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("invoke: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fnURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invoke %s: %w", fnURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if d.cfg.Endpoint == "" {
		tok, err := d.idToken(ctx, fnURL)
		if err != nil {
			return fmt.Errorf("invoke %s: id token: %w", fnURL, err)
		}
		tok.SetAuthHeader(req)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", fnURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	se := &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(snippet))}
	kind := engine.KindInternal
	var cause error = se
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusConflict:
		// No free instance, or one that serves another container.
		kind, cause = engine.KindUnavailable, errors.Join(se, engine.ErrBusy)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		kind = engine.KindUnavailable
	}
	return &engine.Error{Kind: kind, Message: fmt.Sprintf("function invocation failed with status %d", resp.StatusCode), Err: cause}
}

// idToken returns a Google ID token for the function at fnURL. The audience
// is the function URL for cloudfunctions.net URLs, else the service's origin.
func (d *Driver) idToken(ctx context.Context, fnURL string) (*oauth2.Token, error) {
	u, err := url.Parse(fnURL)
	if err != nil {
		return nil, err
	}
	aud := u.Scheme + "://" + u.Host
	if strings.HasSuffix(u.Hostname(), ".cloudfunctions.net") {
		aud += u.EscapedPath()
	}
	d.tokensMu.Lock()
	ts, ok := d.tokens[aud]
	d.tokensMu.Unlock()
	if !ok {
		// The token source outlives this call, so it must not use ctx.
		ts, err = idtoken.NewTokenSource(context.WithoutCancel(ctx), aud)
		if err != nil {
			return nil, err
		}
		d.tokensMu.Lock()
		d.tokens[aud] = ts
		d.tokensMu.Unlock()
	}
	return ts.Token()
}
