package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sockerless/sockerless/services/internal/authn"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// ErrUnauthorized is the error of a request whose credentials identify no
// one. Its text is all a client learns: it never says whether a token
// existed, was revoked or expired.
var ErrUnauthorized = errors.New("Unauthorized: this endpoint requires a valid bearer token (forwarder --token, SOCKERLESS_TOKEN or forwarder --google)")

// IDVerifier checks a Google ID token and returns the principal it names
// (the email of a user or service account).
type IDVerifier interface {
	Verify(ctx context.Context, token string) (principal string, err error)
}

// Config configures an Authenticator.
type Config struct {
	// AdminToken is the bootstrap token (--token, Secret Manager): an
	// admin of DefaultNamespace. Empty: none.
	AdminToken string
	// Store holds issued tokens and members; nil: only AdminToken works.
	Store Store
	// IDTokens verifies Google ID tokens; nil refuses them.
	IDTokens IDVerifier
	// Now is the clock of expiries; nil: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Authenticator turns a request's credentials into an Identity.
type Authenticator struct {
	cfg   Config
	admin [32]byte
}

// New returns an Authenticator.
func New(cfg Config) *Authenticator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Authenticator{cfg: cfg}
	if cfg.AdminToken != "" {
		a.admin = sha256.Sum256([]byte(cfg.AdminToken))
	}
	return a
}

// BearerToken returns the credentials of an "Authorization: Bearer X"
// header (scheme case-insensitive, as RFC 6750), or "".
func BearerToken(r *http.Request) string {
	tok, _ := authn.Bearer(r.Header.Get("Authorization"))
	return tok
}

// Identify returns who presents bearer token tok: the bootstrap admin, an
// issued token's member, or a Google identity's member. It returns
// ErrUnauthorized, or another error when the store cannot answer.
func (a *Authenticator) Identify(ctx context.Context, tok string) (Identity, error) {
	if tok == "" {
		return Identity{}, ErrUnauthorized
	}
	if a.cfg.AdminToken != "" {
		// Hashes make the comparison constant-time whatever the lengths.
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], a.admin[:]) == 1 {
			return Identity{Member: "admin", Namespace: DefaultNamespace, Role: RoleAdmin}, nil
		}
	}
	if id, ok := tokenID(tok); ok && a.cfg.Store != nil {
		t, err := a.cfg.Store.GetToken(ctx, id)
		switch {
		case isNotFound(err):
			return Identity{}, ErrUnauthorized
		case err != nil:
			return Identity{}, fmt.Errorf("look up token: %w", err)
		case !t.matches(tok) || t.Expired(a.cfg.Now()):
			return Identity{}, ErrUnauthorized
		}
		return t.Identity(), nil
	}
	if a.cfg.IDTokens != nil && a.cfg.Store != nil && strings.Count(tok, ".") == 2 {
		principal, err := a.cfg.IDTokens.Verify(ctx, tok)
		if err != nil {
			a.cfg.Logger.Debug("id token refused", "err", err)
			return Identity{}, ErrUnauthorized
		}
		m, err := a.cfg.Store.GetMember(ctx, principal)
		switch {
		case isNotFound(err):
			a.cfg.Logger.Info("google identity is no member", "principal", principal)
			return Identity{}, ErrUnauthorized
		case err != nil:
			return Identity{}, fmt.Errorf("look up member: %w", err)
		}
		return m.Identity(), nil
	}
	return Identity{}, ErrUnauthorized
}

func isNotFound(err error) bool { return errors.Is(err, engine.ErrNotFound) }

// Middleware lets through requests whose bearer token identifies someone,
// with their Identity in the context, and answers others 401.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Identify(r.Context(), BearerToken(r))
		if err != nil {
			if errors.Is(err, ErrUnauthorized) {
				WriteError(w, http.StatusUnauthorized, ErrUnauthorized.Error())
				return
			}
			a.cfg.Logger.Error("authenticate", "err", err)
			WriteError(w, http.StatusServiceUnavailable, "authentication is unavailable, try again")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// RequireAdmin answers 403 to requests whose identity is not an admin.
func RequireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := FromContext(r.Context()); !ok || !id.Admin() {
			WriteError(w, http.StatusForbidden, fmt.Sprintf("Forbidden: %s needs the admin role", r.URL.Path))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteError writes Docker's error body {"message": msg} with code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
