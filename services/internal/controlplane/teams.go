package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/httprate"
	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// UsagePath answers GET with what the caller's namespace used since a
// time, and its estimated cost:
//
//	GET /sockerless/v1/usage?since=2026-11-01T00:00:00Z   (or since=24h, or a Unix time)
//	{"namespace":"alice","since":"…","vcpuSeconds":…,"gibSeconds":…,"invocations":…,"usd":…}
//
// Instances count from their invocation to their end, linger included;
// instances up now count until now. An admin may ask for another
// namespace with namespace=NS. Without since: everything recorded.
const UsagePath = "/sockerless/v1/usage"

// usageReader is the engine's per-namespace usage.
type usageReader interface {
	NamespaceUsage(ctx context.Context, ns string, since time.Time) (engine.Cost, error)
}

// usageResponse is UsagePath's answer.
type usageResponse struct {
	Namespace string    `json:"namespace"`
	Since     time.Time `json:"since,omitzero"`
	engine.Cost
}

// usageHandler serves UsagePath.
func usageHandler(u usageReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			auth.WriteError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		q := r.URL.Query()
		since, err := parseSince(q.Get("since"), time.Now())
		if err != nil {
			auth.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		ns := auth.Namespace(r.Context())
		if other := q.Get("namespace"); other != "" && other != ns {
			if id, _ := auth.FromContext(r.Context()); !id.Admin() {
				auth.WriteError(w, http.StatusForbidden, "Forbidden: the usage of another namespace needs the admin role")
				return
			}
			ns = other
		}
		cost, err := u.NamespaceUsage(r.Context(), ns, since)
		if err != nil {
			auth.WriteError(w, http.StatusInternalServerError, "usage: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(usageResponse{Namespace: ns, Since: since, Cost: cost})
	})
}

// parseSince reads since as an RFC 3339 time, a duration before now
// ("24h") or Unix seconds; "" is the zero time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Unix(s, 0), nil
	}
	return time.Time{}, fmt.Errorf("since %q: want an RFC 3339 time, a duration such as 24h, or Unix seconds", v)
}

// rateLimit answers 429 to a token (or Google identity) that sends more
// than perMinute requests in a minute; 0 lets everything through.
func rateLimit(perMinute int, next http.Handler) http.Handler {
	if perMinute <= 0 {
		return next
	}
	limited := httprate.Limit(perMinute, time.Minute,
		httprate.WithKeyFuncs(func(r *http.Request) (string, error) {
			id, _ := auth.FromContext(r.Context())
			return id.Key(), nil
		}),
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			auth.WriteError(w, http.StatusTooManyRequests, fmt.Sprintf("Too many requests: at most %d a minute per token (--rate-limit); try again after the Retry-After seconds", perMinute))
		}),
	)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth.FromContext(r.Context()); !ok {
			next.ServeHTTP(w, r) // agents' dials: their own secret, no caller
			return
		}
		limited.ServeHTTP(w, r)
	})
}

// idVerifier returns the Google ID token verifier of --google-audience,
// or nil (Google identities refused).
func (cfg *Config) idVerifier(ctx context.Context) (auth.IDVerifier, error) {
	if cfg.GoogleAudience == "" {
		return nil, nil
	}
	v, err := auth.NewGoogleVerifier(ctx, cfg.GoogleAudience, cfg.IDTokenOptions...)
	if err != nil {
		return nil, err
	}
	return v, nil
}
