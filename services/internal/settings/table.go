package settings

// All returns every control plane setting, in the order --help lists them.
// Each call returns a fresh slice: callers may keep or change it.
func All() []Setting {
	rows := []Setting{
		{Flag: Dev, Bool: true,
			Usage: "run the whole local stack: embedded store, and gcpsim (local Google and registry) as its own process"},
		{Flag: Store, Default: "bolt", Hosted: true,
			Usage: "where state lives: bolt (embedded, one machine) or firestore (required outside --dev)"},
		{Flag: StateDir,
			Usage: "directory for the embedded store and local state (outside --dev with firestore: a scratch directory under the system temp dir)"},
		{Flag: Listen, Repeat: true,
			Usage: "unix:///path (no token, guarded by file mode) or tcp://host:port (token required; ?reuseport=true lets several control planes share the port, as during a Cloud Run redeploy); repeatable; env: comma-separated; default outside --dev: tcp://0.0.0.0:$PORT when PORT is set (Cloud Run)"},
		{Flag: Token, Hosted: true,
			Usage: "bearer token clients must send on TCP listeners (outside --dev: required, at least 16 characters)"},
		{Flag: RegistryMirror, Repeat: true,
			Usage: "registry=URL, e.g. docker.io=http://127.0.0.1:5055; repeatable; env: comma-separated (outside --dev: https only)"},
		{Flag: AgentBinary,
			Usage: "static agent binary added to every image (default: 'agent' next to this binary)"},
		{Flag: CallbackURL, Hosted: true, // the seed's SOCKERLESS_CALLBACK_URL is its twin
			Usage: "hub URL function instances dial back to (default in --dev: the first TCP listener; outside --dev: required, wss:// or https://, on Cloud Run the service's own URL)"},
		{Flag: Linger, Default: "60s",
			Usage: "how long an instance stays after its process exits (docker start/cp/exec of exited containers)"},
		{Flag: BootTimeout, Default: "2m",
			Usage: "how long start waits for a new instance's agent to call back"},
		{Flag: OperationDelay, Default: "1s",
			Usage: "dev: how long gcpsim's create/update operations take"},
		{Flag: GCPProject, Aliases: []string{"SOCKERLESS_GCF_PROJECT"}, Hosted: true,
			Usage: "Google Cloud project of the functions"},
		{Flag: GCPRegion, Aliases: []string{"SOCKERLESS_GCF_REGION"}, Default: "us-central1", Hosted: true,
			Usage: "region of the functions"},
		{Flag: ServiceAccount, Aliases: []string{"SOCKERLESS_GCF_SERVICE_ACCOUNT"}, Hosted: true,
			Usage: "service account the functions run as (outside --dev: required, an account with nothing but logging)"},
		{Flag: GCPEndpoint,
			Usage: "gRPC host:port of a running gcpsim instead of Google (dev only; empty: the gcpsim of --state-dir, started as its own process if none runs)"},
		{Flag: GCPSimBinary,
			Usage: "dev: the gcpsim binary started as its own process, which outlives the control plane with its instances (default: 'gcpsim' next to this binary; without one, gcpsim runs in-process)"},
		{Flag: ImageRepo, Hosted: true,
			Usage: "repository for wrapped images, e.g. REGION-docker.pkg.dev/PROJECT/REPO/wrapped (dev: gcpsim's registry)"},
		{Flag: LogLevel, Default: "info",
			Usage: "debug, info, warn or error"},
		{Flag: VolumeBucket,
			Usage: "Cloud Storage bucket holding docker volumes, mounted in every function (dev default: gcpsim's bucket sockerless-volumes; without it or --volume-nfs, volumes are refused)"},
		{Flag: VolumeNFS,
			Usage: "SERVER:/EXPORT of an NFS share (Filestore) holding docker volumes instead of a bucket: POSIX semantics (locks, renames)"},
		{Flag: VolumeNFSDir,
			Usage: "where this control plane has the --volume-nfs share mounted (a Cloud Run volume mount of the same export), to delete and measure volume data"},
		{Flag: VolumeNetwork,
			Usage: "VPC network functions reach the --volume-nfs share through (Direct VPC egress)"},
		{Flag: VolumeSubnet,
			Usage: "subnetwork of --volume-vpc-network for the functions' Direct VPC egress"},
		{Flag: ExposeHostPort, Repeat: true,
			Usage: "a TCP port of this machine that containers created through the unix socket may reach as host.docker.internal (--add-host NAME:host-gateway); repeatable; env: comma-separated (the forwarder has the same flag for its clients)"},
		{Flag: MaxBody, Default: "4MiB",
			Usage: "largest JSON request body (create, exec, update, networks, volumes…): bytes, or with KiB/MiB; a larger one is refused with 413 (archive uploads and image load/import stream and are not bounded)"},
		{Flag: IdleTimeout, Default: "2m",
			Usage: "how long a keep-alive connection may stay idle between requests before it is closed (a request head must arrive within 10s of connecting)"},
		{Flag: RegistryAllow, Repeat: true,
			Usage: "registry (host[:port], or *.domain for its subdomains) image pulls and pushes may name; others are refused with 403; repeatable; env: comma-separated; empty: any registry"},
	}
	for i := range rows {
		rows[i].Env = EnvName(rows[i].Flag)
	}
	return rows
}
