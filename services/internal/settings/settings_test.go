package settings

import (
	"regexp"
	"strings"
	"testing"
)

func TestTableIsConsistent(t *testing.T) {
	flags := map[string]bool{}
	vars := map[string]string{}
	for _, s := range All() {
		if s.Flag == "" || strings.HasPrefix(s.Flag, "-") || s.Flag != strings.ToLower(s.Flag) {
			t.Errorf("flag %q: want a lower-case name without dashes in front", s.Flag)
		}
		if flags[s.Flag] {
			t.Errorf("flag --%s appears twice", s.Flag)
		}
		flags[s.Flag] = true
		if s.Env != EnvName(s.Flag) {
			t.Errorf("--%s: env %q, want its twin %q", s.Flag, s.Env, EnvName(s.Flag))
		}
		if s.Usage == "" {
			t.Errorf("--%s has no usage", s.Flag)
		}
		if s.Bool && (s.Repeat || s.Default != "" || s.Hosted) {
			t.Errorf("--%s: a boolean flag is neither repeated, defaulted nor required", s.Flag)
		}
		for _, n := range s.Names() {
			if !strings.HasPrefix(n, Prefix) {
				t.Errorf("--%s: variable %s lacks the %s prefix", s.Flag, n, Prefix)
			}
			if other, ok := vars[n]; ok {
				t.Errorf("variable %s names both --%s and --%s", n, other, s.Flag)
			}
			vars[n] = s.Flag
		}
	}
}

func TestAllReturnsAFreshCopy(t *testing.T) {
	a := All()
	a[0].Flag = "changed"
	if All()[0].Flag == "changed" {
		t.Fatal("All shares its rows between calls")
	}
}

func TestLookupAndByEnv(t *testing.T) {
	tests := []struct {
		name   string
		find   func() (Setting, bool)
		want   string // flag; empty means not found
		wantOK bool
	}{
		{"flag name is found", func() (Setting, bool) { return Lookup(GCPProject) }, GCPProject, true},
		{"unknown flag is not found", func() (Setting, bool) { return Lookup("gcf-project") }, "", false},
		{"env twin is found", func() (Setting, bool) { return ByEnv("SOCKERLESS_IMAGE_REPO") }, ImageRepo, true},
		{"seed alias is found", func() (Setting, bool) { return ByEnv("SOCKERLESS_GCF_SERVICE_ACCOUNT") }, ServiceAccount, true},
		{"seed callback name is the twin", func() (Setting, bool) { return ByEnv("SOCKERLESS_CALLBACK_URL") }, CallbackURL, true},
		{"unknown variable is not found", func() (Setting, bool) { return ByEnv("SOCKERLESS_NOPE") }, "", false},
		{"PORT is not a setting", func() (Setting, bool) { return ByEnv(PortEnv) }, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := tt.find()
			if ok != tt.wantOK || s.Flag != tt.want {
				t.Fatalf("got (%q, %v), want (%q, %v)", s.Flag, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRefNamesFlagAndVariable(t *testing.T) {
	s, _ := Lookup(GCPProject)
	if got, want := s.Ref(), "--gcp-project (SOCKERLESS_GCP_PROJECT)"; got != want {
		t.Fatalf("Ref() = %q, want %q", got, want)
	}
	if got := Ref(StateDir); got != "--state-dir (SOCKERLESS_STATE_DIR)" {
		t.Fatalf("Ref(StateDir) = %q", got)
	}
}

func TestHostedSettingsAreWhatAHostedControlPlaneNeeds(t *testing.T) {
	want := map[string]bool{Store: true, Token: true, CallbackURL: true, GCPProject: true, GCPRegion: true, ServiceAccount: true, ImageRepo: true}
	got := map[string]bool{}
	for _, s := range Hosted() {
		got[s.Flag] = true
	}
	for f := range want {
		if !got[f] {
			t.Errorf("--%s is not marked hosted", f)
		}
	}
	for f := range got {
		if !want[f] {
			t.Errorf("--%s is marked hosted; update this test and the deployment if that is meant", f)
		}
	}
}

func TestPatterns(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		value   string
		match   bool
	}{
		{"plain project matches", ProjectPattern, "my-project-123", true},
		{"domain-scoped project matches", ProjectPattern, "example.com:my-project", true},
		{"project with capitals fails", ProjectPattern, "My-Project", false},
		{"project too short fails", ProjectPattern, "abc", false},
		{"project ending in a dash fails", ProjectPattern, "my-project-", false},
		{"project starting with a digit fails", ProjectPattern, "1project", false},
		{"region matches", RegionPattern, "us-central1", true},
		{"two-word region matches", RegionPattern, "northamerica-northeast2", true},
		{"zone fails", RegionPattern, "us-central1-a", false},
		{"multi-region fails", RegionPattern, "us", false},
		{"dev region fails", RegionPattern, "local", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := regexp.MustCompile(tt.pattern).MatchString(tt.value); got != tt.match {
				t.Fatalf("%q matches %s: %v, want %v", tt.value, tt.pattern, got, tt.match)
			}
		})
	}
}
