package dockerapi

import (
	"context"
	"net/http"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// Login checks registry credentials (package images).
type Login func(ctx context.Context, a engine.RegistryAuth) error

// postAuth: POST /auth (docker login). The credentials are checked
// against their registry and forgotten: the docker CLI keeps them in its
// own credential store and sends them with every pull (X-Registry-Auth).
func (s *Server) postAuth(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Login == nil {
		notImplemented(w, r)
		return nil
	}
	var a engine.RegistryAuth
	if err := decodeJSON(r, &a); err != nil {
		return err
	}
	if err := s.cfg.Login(r.Context(), a); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Status        string
		IdentityToken string `json:",omitempty"`
	}{Status: "Login Succeeded"})
}

// pullAuth adds the client's credentials for a pull (X-Registry-Auth) to
// the request's context: they live as long as the request.
func pullAuth(r *http.Request) (context.Context, error) {
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		return r.Context(), nil
	}
	var a engine.RegistryAuth
	if err := decodeAuthHeader(h, &a); err != nil {
		return nil, err
	}
	return engine.WithRegistryAuth(r.Context(), a), nil
}
