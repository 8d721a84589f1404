// Package settings is the one table of every control plane setting: its
// flag, its environment twin (SOCKERLESS_<FLAG>), the seed system's names it
// also accepts, its default and its meaning.
//
// It holds names and documentation only, no behaviour: cmd/controlplane
// applies the table to a controlplane.Config, the control plane names
// settings in its errors with Ref, and tests check that the README, the
// Cloud Run service definition (deploy/) and the Terraform module
// (terraform/) use exactly these names. Nothing here reads the environment.
package settings

import "strings"

// Prefix starts the environment twin of every flag.
const Prefix = "SOCKERLESS_"

// Flag names of the control plane's settings.
const (
	Dev            = "dev"
	Store          = "store"
	StateDir       = "state-dir"
	Listen         = "listen"
	Token          = "token"
	RegistryMirror = "registry-mirror"
	AgentBinary    = "agent-binary"
	CallbackURL    = "callback-url"
	Linger         = "linger"
	BootTimeout    = "boot-timeout"
	OperationDelay = "operation-delay"
	StoreLatency   = "store-latency"
	GCPProject     = "gcp-project"
	GCPRegion      = "gcp-region"
	ServiceAccount = "service-account"
	GCPEndpoint    = "gcp-endpoint"
	GCPSimBinary   = "gcpsim-binary"
	SimProfile     = "sim-profile"
	SimTimeScale   = "sim-time-scale"
	PoolSize       = "pool-size"
	MaxInstances   = "max-instances"
	PrewarmImage   = "prewarm-image"
	ImageRepo      = "image-repo"
	LogLevel       = "log-level"
	VolumeBucket   = "volume-bucket"
	VolumeNFS      = "volume-nfs"
	VolumeNFSDir   = "volume-nfs-dir"
	VolumeNetwork  = "volume-vpc-network"
	VolumeSubnet   = "volume-vpc-subnet"
	ExposeHostPort = "expose-host-port"
	QuotaRunning   = "quota-running"
	QuotaVCPU      = "quota-vcpu"
	QuotaMemory    = "quota-memory"
	QuotaLogBytes  = "quota-log-bytes"
	RateLimit      = "rate-limit"
	PriceVCPU      = "price-vcpu-second"
	PriceGiB       = "price-gib-second"
	PriceRequest   = "price-invocation"
	GoogleAudience = "google-audience"
	MaxBody        = "max-body"
	IdleTimeout    = "idle-timeout"
	RegistryAllow  = "registry-allow"
)

// PortEnv is the variable Cloud Run sets to the port a service must serve
// on. Outside --dev, with no --listen, the control plane listens on
// tcp://0.0.0.0:$PORT.
const PortEnv = "PORT"

// Patterns of values that Google checks too; the control plane checks them
// before it calls Google, and the Terraform module's variable validations
// use the same expressions.
const (
	// ProjectPattern matches a Google Cloud project ID, optionally
	// domain-scoped ("example.com:my-project").
	ProjectPattern = `^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`
	// RegionPattern matches a Google Cloud region such as us-central1 or
	// europe-west4.
	RegionPattern = `^[a-z]+-[a-z]+[0-9]+$`
)

// Setting is one row of the table.
type Setting struct {
	// Flag is the command-line name without dashes, e.g. "state-dir".
	Flag string
	// Env is the environment twin, e.g. "SOCKERLESS_STATE_DIR".
	Env string
	// Aliases are older environment names with the same meaning (the seed
	// system's), consulted after Env.
	Aliases []string
	// Default is the value used when neither flag nor variable is given;
	// empty means none.
	Default string
	// Usage says what the setting means, for --help and the README.
	Usage string
	// Repeat marks a flag that may be given several times; its variable
	// takes a comma-separated list.
	Repeat bool
	// Bool marks a flag that takes no value (--dev).
	Bool bool
	// Hosted marks a setting a hosted deployment (not --dev) must set: the
	// control plane refuses to start without it, and the Cloud Run service
	// definition and the Terraform module must both set it.
	Hosted bool
}

// Ref names the setting in messages: "--gcp-project (SOCKERLESS_GCP_PROJECT)".
func (s Setting) Ref() string {
	return "--" + s.Flag + " (" + s.Env + ")"
}

// Names returns Env followed by Aliases: every variable that sets s, in the
// order they are consulted.
func (s Setting) Names() []string {
	return append([]string{s.Env}, s.Aliases...)
}

// EnvName is the environment twin of a flag: state-dir → SOCKERLESS_STATE_DIR.
func EnvName(flag string) string {
	return Prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Ref names the setting with flag name flag in messages, e.g.
// "--gcp-project (SOCKERLESS_GCP_PROJECT)"; it works for any flag name.
func Ref(flag string) string {
	return Setting{Flag: flag, Env: EnvName(flag)}.Ref()
}

// Lookup finds a setting by flag name.
func Lookup(flag string) (Setting, bool) {
	for _, s := range All() {
		if s.Flag == flag {
			return s, true
		}
	}
	return Setting{}, false
}

// ByEnv finds the setting that the environment variable name sets, by its
// twin or an alias.
func ByEnv(name string) (Setting, bool) {
	for _, s := range All() {
		for _, n := range s.Names() {
			if n == name {
				return s, true
			}
		}
	}
	return Setting{}, false
}

// Hosted returns the settings a hosted deployment must set.
func Hosted() []Setting {
	var out []Setting
	for _, s := range All() {
		if s.Hosted {
			out = append(out, s)
		}
	}
	return out
}
