package process

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DefaultPath is the search path used when the process's env has no PATH,
// as runc and docker use.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Exit codes of a process that could not be started, as docker reports them.
const (
	CodeCannotExecute = 126
	CodeNotFound      = 127
)

// StartError says why a process could not be started. Code is the exit code
// docker reports for it (126 or 127); Error() is docker's message.
type StartError struct {
	Code int
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

func notFound(format string, args ...any) *StartError {
	return &StartError{Code: CodeNotFound, Msg: fmt.Sprintf(format, args...)}
}

func cannotExec(format string, args ...any) *StartError {
	return &StartError{Code: CodeCannotExecute, Msg: fmt.Sprintf(format, args...)}
}

// envValue returns the value of key in env ("K=V" entries; the last wins).
func envValue(env []string, key string) (string, bool) {
	val, ok := "", false
	for _, kv := range env {
		if k, v, found := strings.Cut(kv, "="); found && k == key {
			val, ok = v, true
		}
	}
	return val, ok
}

// lookPath finds the executable for name the way runc does, but with the
// process's own PATH (from env) and relative paths taken from dir, the
// process's working directory. It returns an absolute path or a
// *StartError.
func lookPath(name string, env []string, dir string) (string, error) {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if strings.Contains(name, "/") {
		p := abs(name)
		if err := checkExecutable(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", notFound("exec: %q: stat %s: no such file or directory", name, name)
			}
			return "", cannotExec("exec: %q: %s", name, errText(err))
		}
		return p, nil
	}
	path, ok := envValue(env, "PATH")
	if !ok {
		path = DefaultPath
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := abs(filepath.Join(d, name))
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", notFound("exec: %q: executable file not found in $PATH", name)
}

var errIsDir = errors.New("is a directory")

// checkExecutable reports whether p is a file with an execute bit.
func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errIsDir
	}
	if st.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// errText is the bare reason of err, without the path os adds.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES.Error()
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT.Error()
	}
	return err.Error()
}

// execError maps an error of fork/exec of path to a *StartError.
func execError(name string, err error) *StartError {
	if errors.Is(err, syscall.ENOENT) {
		return notFound("exec: %q: %s", name, errText(err))
	}
	return cannotExec("exec: %q: %s", name, errText(err))
}
