package images

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// allowed refuses a reference whose registry is not on Config.Allow (an
// empty list allows any). Entries are host[:port] ("docker.io" names
// Docker Hub under all its host names) or "*.domain" for every host under
// domain. The check is on the registry the user names, before any
// connection: a refused pull reaches nothing.
func (s *Source) allowed(ref name.Reference) error {
	if len(s.cfg.Allow) == 0 {
		return nil
	}
	host := canonicalHost(ref.Context().RegistryStr())
	for _, a := range s.cfg.Allow {
		a = strings.ToLower(strings.TrimSpace(a))
		if suffix, ok := strings.CutPrefix(a, "*."); ok {
			h, _, _ := strings.Cut(host, ":")
			if strings.HasSuffix(h, "."+suffix) {
				return nil
			}
			continue
		}
		if canonicalHost(a) == host {
			return nil
		}
	}
	return &engine.Error{Kind: engine.KindForbidden, Message: fmt.Sprintf(
		"registry %s is not allowed on this control plane (setting --registry-allow)", ref.Context().RegistryStr())}
}

// unreachable is the one answer for every pull that got no registry's
// answer, whatever the reason (refused, reset, timed out, not HTTP, not a
// registry): a pull must not tell a port scanner which hosts and ports
// exist behind the control plane. The details go to the log only.
func unreachable(ref name.Reference) error {
	return engine.Errorf(engine.KindUnavailable, "cannot pull %s: registry %s did not answer as a registry",
		ref.String(), ref.Context().RegistryStr())
}
