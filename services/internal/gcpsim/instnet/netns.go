package instnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// createNetns makes a new network namespace with its loopback up and binds
// it at path, a new file, so that it lives until removeNetns.
func createNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("network namespace file: %w", err)
	}
	f.Close()
	err = onOwnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		if err := loopbackUp(); err != nil {
			return err
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("create network namespace: %w", err)
	}
	return nil
}

// loopbackUp brings up lo of the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// removeNetns unbinds and deletes the namespace file at path; the
// namespace itself goes once no process or socket is left in it.
func removeNetns(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unbind %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// onOwnThread runs fn on a thread of its own, which fn may move into
// another network namespace: afterwards the thread returns to gcpsim's,
// or, if it cannot, ends (it stays locked) instead of running others in
// the wrong namespace.
func onOwnThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("own network namespace: %w", err)
			return
		}
		defer unix.Close(self)
		ferr := fn()
		if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// inNetns runs fn on a thread that is in the namespace open as nsFD. A
// socket keeps the namespace it was created in, so sockets fn makes stay
// in it once the thread has gone back.
func inNetns(nsFD int, fn func() error) error {
	return onOwnThread(func() error {
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return fn()
	})
}

// makeIn returns what mk makes (a socket) on a thread inside the
// namespace nsFD.
func makeIn[T any](nsFD int, mk func() (T, error)) (T, error) {
	var v T
	err := inNetns(nsFD, func() error {
		var err error
		v, err = mk()
		return err
	})
	return v, err
}

// dialIn connects to addr from inside the namespace nsFD.
func dialIn(ctx context.Context, nsFD int, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return makeIn(nsFD, func() (net.Conn, error) { return d.DialContext(ctx, network, addr) })
}

// listenIn listens on addr inside the namespace nsFD.
func listenIn(nsFD int, network, addr string) (net.Listener, error) {
	return makeIn(nsFD, func() (net.Listener, error) { return net.Listen(network, addr) })
}

// listenPacketIn opens a packet socket on addr inside the namespace nsFD.
func listenPacketIn(nsFD int, network, addr string) (net.PacketConn, error) {
	return makeIn(nsFD, func() (net.PacketConn, error) { return net.ListenPacket(network, addr) })
}
