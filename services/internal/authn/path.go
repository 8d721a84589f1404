package authn

import (
	"net/http"
	"path"
)

// Exempt reports whether r asks for one of paths exactly: its escaped path
// (what routers match, with %2F kept) and its decoded path are both the
// clean path itself. "/agent%2Fv1%2Fconnect" decodes to an exempt path but
// is routed elsewhere, so it is not exempt; nor is "//agent/v1/connect" or
// "/x/../agent/v1/connect", which a router may clean or redirect.
func Exempt(r *http.Request, paths ...string) bool {
	p := r.URL.Path
	if r.URL.RawPath != "" && r.URL.RawPath != p {
		return false
	}
	if p == "" || path.Clean(p) != p {
		return false
	}
	for _, e := range paths {
		if p == e {
			return true
		}
	}
	return false
}
