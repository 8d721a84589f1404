// Package bindsync keeps a host bind mount (docker run -v /host/dir:/ctr)
// in step between the client's machine and a container's function
// instance (DESIGN.md "The storage plane"). The host side (the forwarder,
// or the --dev control plane for its own unix-socket clients: ServeHost)
// and the agent (Open) each run a Session over one stream that the mesh
// and the client link carry.
//
// Protocol: every message is one JSON line; a file's put is followed by
// its bytes. The host says what the bind is (a directory, or one file) in
// its hello, then ships its whole tree as ops (streamed file by file, never
// the tree in memory) and a barrier; from then on each side ships the
// paths its file-system watcher (fsnotify: inotify on Linux) reports
// changed, as their current state (put, mkdir, link, rm). Renames travel
// as a remove and a create. Symlinks are kept as links and never
// followed: no op is applied through a symlink, so a container cannot
// make the host write outside the bind.
//
// Barriers make the CI patterns correct: Sync ships every change made
// before it was called and waits until the peer applied them; Pull asks
// the peer for the same in the other direction. A barrier is a "watch
// cookie": the side writes a unique file into its tree and waits for the
// watcher to report it; inotify reports events in order, so every change
// made before the cookie was seen and queued before it, and the barrier
// message follows them on the stream. The agent pulls before a process or
// exec starts and syncs after one ends, before its exit is reported.
//
// Conflicts (both sides changed a path between barriers): the change
// stamped later by the sync's clock wins (the host's clock; the agent
// offsets its own by the difference the hello showed). Each side
// remembers the state it last shipped or applied per path, so the
// watcher's report of an applied change is not shipped back.
package bindsync
