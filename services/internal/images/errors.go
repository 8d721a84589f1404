package images

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// pullError turns a registry's answer into docker's wording: a missing or
// forbidden repository is "pull access denied" (Docker Hub answers 401 for
// a repository that does not exist), a missing tag or digest of a known
// repository is "manifest … not found", both KindNotFound; anything else
// (unreachable, 5xx) is KindUnavailable.
func pullError(user name.Reference, err error) error {
	ref := user.String()
	var te *transport.Error
	if !errors.As(err, &te) || !registryAnswer(te) {
		return &engine.Error{Kind: engine.KindUnavailable, Err: err, Message: unreachable(user).Error()}
	}
	repoMissing := te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden
	manifestMissing := false
	for _, d := range te.Errors {
		switch d.Code {
		case transport.NameUnknownErrorCode, transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			repoMissing = true
		case transport.ManifestUnknownErrorCode:
			manifestMissing = true
		}
	}
	switch {
	case repoMissing || (te.StatusCode == http.StatusNotFound && !manifestMissing):
		return &engine.Error{Kind: engine.KindNotFound, Err: err,
			Message: fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login'", familiarRepo(ref))}
	case manifestMissing:
		return &engine.Error{Kind: engine.KindNotFound, Err: err,
			Message: fmt.Sprintf("manifest for %s not found: manifest unknown: manifest unknown", familiarRef(ref))}
	}
	return &engine.Error{Kind: engine.KindUnavailable, Err: err, Message: unreachable(user).Error()}
}

// registryAnswer reports whether te is a registry speaking: an error body
// in the distribution format, or a refusal of credentials with a
// challenge. A web server's plain 404 or 500 is not.
func registryAnswer(te *transport.Error) bool {
	if len(te.Errors) > 0 {
		return true
	}
	return te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden
}

// familiarRepo is ref's repository as docker shows it ("busybox").
func familiarRepo(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarName(n)
}

// familiarRef is ref as docker shows it, with the default tag made
// explicit ("busybox:latest", "me/app@sha256:…").
func familiarRef(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(reference.TagNameOnly(n))
}
