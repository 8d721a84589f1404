package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// Paths of the admin API (every route needs the admin role):
//
//	POST   /sockerless/v1/tokens          {"member","namespace","role","expires"} → 201 {"id","token",…}
//	GET    /sockerless/v1/tokens          every token, without secrets
//	DELETE /sockerless/v1/tokens/{id}     revoke: the next request with it fails
//	PUT    /sockerless/v1/members/{email} {"member","namespace","role"}: a Google identity
//	GET    /sockerless/v1/members
//	DELETE /sockerless/v1/members/{email}
const (
	TokensPath  = "/sockerless/v1/tokens"
	MembersPath = "/sockerless/v1/members"
)

// TokenRequest is the body of POST TokensPath. Expires is an RFC 3339
// time or a Go duration from now ("720h"); empty: never.
type TokenRequest struct {
	Member    string `json:"member"`
	Namespace string `json:"namespace"`
	Role      string `json:"role"`
	Expires   string `json:"expires,omitempty"`
}

// TokenResponse is a token as the API shows it; Token (the secret) only
// in the answer to its creation.
type TokenResponse struct {
	ID        string    `json:"id"`
	Token     string    `json:"token,omitempty"`
	Member    string    `json:"member"`
	Namespace string    `json:"namespace"`
	Role      Role      `json:"role"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires,omitzero"`
}

func tokenResponse(t *Token, secret string) TokenResponse {
	return TokenResponse{ID: t.ID, Token: secret, Member: t.Member, Namespace: t.Namespace, Role: t.Role, Created: t.Created, Expires: t.Expires}
}

// Admin serves the admin API on s; mount it at TokensPath and
// MembersPath (with and without a trailing "/…") behind Middleware.
type Admin struct {
	store Store
	now   func() time.Time
	log   *slog.Logger
	mux   *http.ServeMux
}

// NewAdmin returns the tokens and members API over s.
func NewAdmin(s Store, log *slog.Logger) *Admin {
	if log == nil {
		log = slog.Default()
	}
	a := &Admin{store: s, now: time.Now, log: log, mux: http.NewServeMux()}
	a.mux.HandleFunc("POST "+TokensPath, a.postToken)
	a.mux.HandleFunc("GET "+TokensPath, a.getTokens)
	a.mux.HandleFunc("DELETE "+TokensPath+"/{id}", a.deleteToken)
	a.mux.HandleFunc("PUT "+MembersPath+"/{principal}", a.putMember)
	a.mux.HandleFunc("GET "+MembersPath, a.getMembers)
	a.mux.HandleFunc("DELETE "+MembersPath+"/{principal}", a.deleteMember)
	return a
}

// ServeHTTP answers admins only (403 to members).
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	RequireAdmin(a.mux).ServeHTTP(w, r)
}

// CreateToken issues a token as req says and returns its record and
// secret.
func CreateToken(r *http.Request, s Store, req TokenRequest, now time.Time) (*Token, string, error) {
	t, err := req.record(now)
	if err != nil {
		return nil, "", err
	}
	secret, err := NewToken(t, now)
	if err != nil {
		return nil, "", err
	}
	if err := s.PutToken(r.Context(), t); err != nil {
		return nil, "", fmt.Errorf("store token: %w", err)
	}
	return t, secret, nil
}

// record checks req and returns the token record it asks for.
func (req TokenRequest) record(now time.Time) (*Token, error) {
	role, err := ParseRole(req.Role)
	if err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "%s", err.Error())
	}
	if strings.TrimSpace(req.Member) == "" || len(req.Member) > 256 {
		return nil, engine.Errorf(engine.KindInvalid, "member: give the name of the person or CI job the token is for (at most 256 characters)")
	}
	if req.Namespace == "" {
		req.Namespace = req.Member
	}
	if err := CheckNamespace(req.Namespace); err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "%s", err.Error())
	}
	t := &Token{Member: req.Member, Namespace: req.Namespace, Role: role}
	if req.Expires != "" {
		if d, err := time.ParseDuration(req.Expires); err == nil {
			t.Expires = now.Add(d).UTC()
		} else if at, err := time.Parse(time.RFC3339, req.Expires); err == nil {
			t.Expires = at.UTC()
		} else {
			return nil, engine.Errorf(engine.KindInvalid, "expires %q: want an RFC 3339 time or a duration such as 720h", req.Expires)
		}
		if !t.Expires.After(now) {
			return nil, engine.Errorf(engine.KindInvalid, "expires %q is not in the future", req.Expires)
		}
	}
	return t, nil
}

func (a *Admin) postToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := decodeBody(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	t, secret, err := CreateToken(r, a.store, req, a.now())
	if err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info("token created", "id", t.ID, "member", t.Member, "namespace", t.Namespace, "role", t.Role)
	writeJSON(w, http.StatusCreated, tokenResponse(t, secret))
}

func (a *Admin) getTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := a.store.ListTokens(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]TokenResponse, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenResponse(t, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Admin) deleteToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.store.DeleteToken(r.Context(), id); err != nil {
		if isNotFound(err) {
			err = engine.Errorf(engine.KindNotFound, "No such token: %s", id)
		}
		a.fail(w, err)
		return
	}
	a.log.Info("token revoked", "id", id)
	w.WriteHeader(http.StatusNoContent)
}

// MemberRequest is the body of PUT MembersPath/{principal}.
type MemberRequest struct {
	Member    string `json:"member,omitempty"`
	Namespace string `json:"namespace"`
	Role      string `json:"role"`
}

func (a *Admin) putMember(w http.ResponseWriter, r *http.Request) {
	var req MemberRequest
	if err := decodeBody(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	m, err := req.record(r.PathValue("principal"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if err := a.store.PutMember(r.Context(), m); err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info("member set", "principal", m.Principal, "namespace", m.Namespace, "role", m.Role)
	writeJSON(w, http.StatusOK, m)
}

// record checks req and returns the member record of principal.
func (req MemberRequest) record(principal string) (*Member, error) {
	if !strings.Contains(principal, "@") || len(principal) > 320 {
		return nil, engine.Errorf(engine.KindInvalid, "principal %q: want the email of a Google account or service account", principal)
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "%s", err.Error())
	}
	if err := CheckNamespace(req.Namespace); err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "%s", err.Error())
	}
	return &Member{Principal: strings.ToLower(principal), Member: req.Member, Namespace: req.Namespace, Role: role}, nil
}

func (a *Admin) getMembers(w http.ResponseWriter, r *http.Request) {
	ms, err := a.store.ListMembers(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	if ms == nil {
		ms = []*Member{}
	}
	writeJSON(w, http.StatusOK, ms)
}

func (a *Admin) deleteMember(w http.ResponseWriter, r *http.Request) {
	p := strings.ToLower(r.PathValue("principal"))
	if err := a.store.DeleteMember(r.Context(), p); err != nil {
		if isNotFound(err) {
			err = engine.Errorf(engine.KindNotFound, "No such member: %s", p)
		}
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail answers err: an engine error's kind and public message, else 500
// (logged, not sent).
func (a *Admin) fail(w http.ResponseWriter, err error) {
	var ee *engine.Error
	if errors.As(err, &ee) && ee.Kind != engine.KindInternal {
		code := map[engine.Kind]int{engine.KindNotFound: 404, engine.KindInvalid: 400, engine.KindConflict: 409}[ee.Kind]
		if code == 0 {
			code = http.StatusInternalServerError
		}
		WriteError(w, code, ee.Message)
		return
	}
	a.log.Error("admin api", "err", err)
	WriteError(w, http.StatusInternalServerError, "internal error")
}

// decodeBody reads a small JSON body into v; unknown fields are refused,
// as an option that would be ignored.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return engine.Errorf(engine.KindInvalid, "invalid JSON: %s", err.Error())
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
