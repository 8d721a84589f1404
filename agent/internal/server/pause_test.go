package server

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// counter is a shell loop appending a timestamp to file every 50 ms.
func counter(file string) string {
	return "while true; do date +%s%N >> " + file + "; sleep 0.05; done"
}

// advancing reports whether file grows within 400 ms, after 150 ms for a
// signal to settle.
func advancing(t *testing.T, file string) bool {
	t.Helper()
	size := func() int64 {
		fi, err := os.Stat(file)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	time.Sleep(150 * time.Millisecond)
	before := size()
	time.Sleep(400 * time.Millisecond)
	return size() > before
}

// A signal with All (docker pause, unpause) reaches every process of the
// container: the main process, an exec and the exec's child; a signal
// without it (docker kill -s STOP) only the main process, as docker.
func TestSignalAllFreezesEveryProcess(t *testing.T) {
	dir := t.TempDir()
	main, execd, child := filepath.Join(dir, "main"), filepath.Join(dir, "exec"), filepath.Join(dir, "child")
	c := runContainer(t, sh(counter(main)), 0, nil)
	c.exec(t, "loops", sh("("+counter(child)+") & "+counter(execd)))
	c.h.startedExec(t, "loops")
	files := []string{main, execd, child}
	for _, f := range files {
		deadline := time.Now().Add(5 * time.Second)
		for _, err := os.Stat(f); err != nil; _, err = os.Stat(f) {
			if time.Now().After(deadline) {
				t.Fatalf("counter %s never started: %v", filepath.Base(f), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	tests := []struct {
		name string
		sig  proto.Signal
		want []bool // whether main, exec and child advance afterwards
	}{
		{"kill -s STOP stops the main process only", proto.Signal{Signal: int(syscall.SIGSTOP)}, []bool{false, true, true}},
		{"kill -s CONT continues it", proto.Signal{Signal: int(syscall.SIGCONT)}, []bool{true, true, true}},
		{"pause stops every process", proto.Signal{Signal: int(syscall.SIGSTOP), All: true}, []bool{false, false, false}},
		{"unpause continues every process", proto.Signal{Signal: int(syscall.SIGCONT), All: true}, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.h.send(t, proto.TypeSignal, tt.sig)
			for i, f := range files {
				if got := advancing(t, f); got != tt.want[i] {
					t.Errorf("%s advancing = %v, want %v", filepath.Base(f), got, tt.want[i])
				}
			}
		})
	}
}
