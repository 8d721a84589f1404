package archive

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// lutimes sets a symlink's own times.
func lutimes(path string, ts []syscall.Timespec) error {
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{unix.NsecToTimespec(syscall.TimespecToNsec(ts[0])), unix.NsecToTimespec(syscall.TimespecToNsec(ts[1]))}, unix.AT_SYMLINK_NOFOLLOW)
}
