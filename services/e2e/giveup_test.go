package e2e

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// gate is a TCP proxy to the control plane that agents dial back through
// (the stack's callback address): while shut it drops every connection
// (the agent sees a failed dial and dials again), once opened it forwards
// them. It stands for an agent slow to call back.
type gate struct {
	ln        net.Listener
	target    string
	open      atomic.Bool
	forwarded atomic.Int64
	wg        sync.WaitGroup
}

func newGate(t *testing.T, target string) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); g.wg.Wait() })
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !g.open.Load() {
				c.Close()
				continue
			}
			g.forwarded.Add(1)
			g.wg.Add(1)
			go func() { defer g.wg.Done(); g.pipe(c) }()
		}
	}()
	return g
}

func (g *gate) pipe(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done
}

func (g *gate) port() int { return g.ln.Addr().(*net.TCPAddr).Port }

// givenUpStack starts a stack whose agents call back through a gate,
// shut at first, with a short boot timeout.
func givenUpStack(t *testing.T) (*stack, *gate) {
	cpPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cpAddr := fmt.Sprintf("127.0.0.1:%d", cpPort)
	g := newGate(t, cpAddr)
	s := otherStack(t, []string{"--callback-url", fmt.Sprintf("ws://127.0.0.1:%d", g.port()), "--boot-timeout", "4s"}, nil,
		func(s *stack) { s.tcp = cpAddr })
	mustDocker(t, s.direct, "pull", "busybox")
	return s, g
}

// afterGivenUp lets the agent of a given-up start call back, then checks
// that the next docker run of the image works and that every instance
// ends: the given-up one when told, the next one after its linger time.
func afterGivenUp(t *testing.T, s *stack, g *gate) {
	t.Helper()
	g.open.Store(true)
	waitFor(t, func() bool { return g.forwarded.Load() > 0 })
	out := mustDocker(t, s.direct, "run", "--rm", "busybox", "echo", "second")
	if strings.TrimSpace(out) != "second" {
		t.Fatalf("docker run after a given-up start: %q, want second", out)
	}
	waitFor(t, func() bool { return s.simStats(t)["instancesRunning"] == 0 })
}

// A start the control plane gives up on (its agent did not call back
// within the boot timeout) must not leave its function instance behind:
// when the late agent calls back it is told its instance is ended, and
// the instance ends (it stops listening first, so the platform sends the
// next invocation to a fresh instance, not to it for a 429).
func TestGivenUpStartEndsItsInstance(t *testing.T) {
	s, g := givenUpStack(t)
	id := strings.TrimSpace(mustDocker(t, s.direct, "create", "busybox", "echo", "never"))
	if r := docker(t, s.direct, "start", id); r.code == 0 {
		t.Fatalf("start whose agent cannot call back succeeded: %s", r.stdout)
	}
	if st := strings.TrimSpace(mustDocker(t, s.direct, "inspect", "-f", "{{.State.Error}}", id)); !strings.Contains(st, "call back") {
		t.Fatalf("State.Error = %q, want the failed call back", st)
	}
	afterGivenUp(t, s, g)
	if st := strings.TrimSpace(mustDocker(t, s.direct, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id)); st != "exited 255" {
		t.Fatalf("the given-up container is %q, want exited 255", st)
	}
	mustDocker(t, s.direct, "rm", id)
}

// The same for docker run --rm: the given-up container is removed before
// its agent calls back.
func TestGivenUpRunRmEndsItsInstance(t *testing.T) {
	s, g := givenUpStack(t)
	if r := docker(t, s.direct, "run", "--rm", "busybox", "echo", "never"); r.code == 0 {
		t.Fatalf("run whose agent cannot call back succeeded: %s", r.stdout)
	}
	waitFor(t, func() bool { return strings.TrimSpace(mustDocker(t, s.direct, "ps", "-aq")) == "" })
	afterGivenUp(t, s, g)
}
