package proto

// Container filesystem operations beyond docker cp: docker diff, commit
// and export are ArchiveCommand execs too, with Args [ArchiveCommand, op,
// "/"]. The agent has no pristine copy of the image, so for diff and
// commit the control plane sends the image's file index (read from its
// layers) on the exec's stdin as FileEntry JSON lines, and the agent
// compares the instance's files against it, as docker compares a
// container's layer against its image.
const (
	// ArchiveChanges: stdin the index; stdout docker diff's changes as
	// Change JSON lines, sorted by path.
	ArchiveChanges = "changes"
	// ArchiveLayer: stdin the index; stdout the changes as an image layer
	// (a tar; deleted paths as ".wh." whiteouts).
	ArchiveLayer = "layer"
	// ArchiveExport: stdout the container's whole filesystem as a tar.
	ArchiveExport = "export"
)

// FileEntry is one path of an image's flattened filesystem.
type FileEntry struct {
	// Path is absolute and clean ("/etc/passwd").
	Path string `json:"p"`
	// Mode is the Unix mode: file type bits (S_IFMT) and permissions,
	// including setuid, setgid and sticky.
	Mode  uint32 `json:"m"`
	Size  int64  `json:"s,omitempty"`
	Mtime int64  `json:"t,omitempty"` // Unix nanoseconds
	UID   int    `json:"u,omitempty"`
	GID   int    `json:"g,omitempty"`
	// Link is a symlink's target.
	Link string `json:"l,omitempty"`
}

// Change kinds, as docker diff numbers them.
const (
	ChangeModify = 0
	ChangeAdd    = 1
	ChangeDelete = 2
)

// Change is one line of docker diff; Size is what an added or modified
// regular file holds (docker's SizeRw adds them up).
type Change struct {
	Path string `json:"Path"`
	Kind int    `json:"Kind"`
	Size int64  `json:"Size,omitempty"`
}
