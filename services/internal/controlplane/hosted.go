package controlplane

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sockerless/sockerless/services/internal/settings"
)

// minTokenLength is the shortest admin token accepted outside --dev, where
// the control plane serves the public internet.
const minTokenLength = 16

// validateHosted checks the configuration of hosted mode (not --dev): the
// control plane on Cloud Run, with Google's APIs, Firestore and Artifact
// Registry. It reports every problem at once, each naming its flag and
// variable, and never a secret's value. It fills the scratch state
// directory when Firestore needs none.
func (cfg *Config) validateHosted() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s "+format, append([]any{settings.Ref(flag)}, args...)...))
	}
	required := func(flag, value string) bool {
		if value == "" {
			bad(flag, "is required when not --dev")
			return false
		}
		return true
	}

	switch cfg.Store {
	case "firestore":
		if cfg.StateDir == "" {
			cfg.StateDir = filepath.Join(os.TempDir(), "sockerless")
		}
	case "", "bolt":
		bad(settings.Store, "is bolt: state on one machine's disk is lost when Cloud Run replaces the instance; use --store firestore outside --dev")
	}
	if required(settings.GCPProject, cfg.Project) && !regexp.MustCompile(settings.ProjectPattern).MatchString(cfg.Project) {
		bad(settings.GCPProject, "is %q, not a Google Cloud project ID (lower-case letters, digits and dashes, 6 to 30 long)", cfg.Project)
	}
	if required(settings.GCPRegion, cfg.Region) && !regexp.MustCompile(settings.RegionPattern).MatchString(cfg.Region) {
		bad(settings.GCPRegion, "is %q, not a Google Cloud region such as us-central1", cfg.Region)
	}
	if required(settings.ServiceAccount, cfg.ServiceAccount) && !strings.Contains(cfg.ServiceAccount, "@") {
		bad(settings.ServiceAccount, "is %q, not a service account email (NAME@PROJECT.iam.gserviceaccount.com)", cfg.ServiceAccount)
	}
	if required(settings.ImageRepo, cfg.TargetRepo) {
		if strings.Contains(cfg.TargetRepo, "://") {
			bad(settings.ImageRepo, "is %q: name a repository without a scheme, e.g. REGION-docker.pkg.dev/PROJECT/REPO/wrapped", cfg.TargetRepo)
		} else if !strings.Contains(cfg.TargetRepo, "/") {
			bad(settings.ImageRepo, "is %q, not a repository: want REGISTRY/PATH, e.g. REGION-docker.pkg.dev/PROJECT/REPO/wrapped", cfg.TargetRepo)
		}
	}
	if required(settings.CallbackURL, cfg.CallbackURL) {
		u, err := url.Parse(cfg.CallbackURL)
		switch {
		case err != nil || u.Host == "":
			bad(settings.CallbackURL, "is not a URL: want wss://HOST (on Cloud Run, the service's own URL)")
		case u.Scheme == "ws" || u.Scheme == "http":
			bad(settings.CallbackURL, "is plain %s outside --dev: agents would send their secrets in clear; use wss:// or https://", u.Scheme)
		case u.Scheme != "wss" && u.Scheme != "https":
			bad(settings.CallbackURL, "has scheme %q: want wss:// or https://", u.Scheme)
		}
	}
	if required(settings.Token, cfg.Token) && len(cfg.Token) < minTokenLength {
		bad(settings.Token, "is shorter than %d characters: the endpoint is public; use e.g. openssl rand -hex 32", minTokenLength)
	}
	for registry, mirror := range cfg.RegistryMirrors {
		if u, err := url.Parse(mirror); err == nil && u.Scheme == "http" {
			bad(settings.RegistryMirror, "%s=%s is plain HTTP outside --dev: use an https:// mirror such as an Artifact Registry remote repository", registry, mirror)
		}
	}
	if cfg.GCPEndpoint != "" {
		bad(settings.GCPEndpoint, "points at gcpsim without credentials: it is for --dev only")
	}
	return errors.Join(errs...)
}
