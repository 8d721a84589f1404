package session

import (
	"fmt"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// TestLargeNetworkViewKeepsTheConnection: a view of hundreds of peers is far
// larger than a data frame; it reaches the handler and the connection
// stays up (frames after it still arrive on the same connection).
func TestLargeNetworkViewKeepsTheConnection(t *testing.T) {
	h := newTestHub(t, "k")
	rec := newRecorder()
	s := newTestSession(h, rec, "k")
	runSession(t, s)
	hc := h.next(t)

	v := proto.NetworkView{DNS: true, Names: map[string][]string{}}
	for i := 0; i < 800; i++ {
		name := fmt.Sprintf("peer-container-with-a-long-name-%04d", i)
		ip := fmt.Sprintf("127.18.%d.%d", i/250, i%250+2)
		v.Names[name] = []string{ip}
		v.Hosts = append(v.Hosts, proto.HostEntry{IP: ip, Names: []string{name, name + ".alias"}})
		for p := 0; p < 4; p++ {
			v.Listen = append(v.Listen, proto.ListenAddr{Addr: fmt.Sprintf("%s:%d", ip, 5000+p), Container: fmt.Sprintf("%064d", i)})
		}
	}
	f, err := proto.Control(proto.TypeNetwork, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Payload) < 8*proto.MaxPayload {
		t.Fatalf("view of %d bytes is not large", len(f.Payload))
	}
	hc.send(t, f)
	hc.send(t, proto.Frame{Type: proto.TypeShutdown})
	for _, want := range []string{"network 3200 listen", "shutdown"} {
		select {
		case got := <-rec.got:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handler did not get %q", want)
		}
	}
	select {
	case <-h.conns:
		t.Fatal("the agent reconnected: the large frame dropped its connection")
	default:
	}
}

// TestListeningIsSentAgainAfterReconnect: the hub hears the latest list of
// listening ports on every connection, and only the latest.
func TestListeningIsSentAgainAfterReconnect(t *testing.T) {
	h := newTestHub(t, "k")
	s := newTestSession(h, newRecorder(), "k")
	runSession(t, s)
	hc := h.next(t)

	s.Listening([]int{80})
	if got := listening(t, hc); fmt.Sprint(got) != "[80]" {
		t.Fatalf("listening %v, want [80]", got)
	}
	s.Listening([]int{80, 5432})
	if got := listening(t, hc); fmt.Sprint(got) != "[80 5432]" {
		t.Fatalf("listening %v, want [80 5432]", got)
	}
	close(hc.done)
	hc2 := h.next(t)
	if got := listening(t, hc2); fmt.Sprint(got) != "[80 5432]" {
		t.Fatalf("after reconnect listening %v, want [80 5432]", got)
	}
}

func listening(t *testing.T, hc *hubConn) []int {
	t.Helper()
	for {
		f := hc.frame(t)
		if f.Type != proto.TypeListening {
			continue
		}
		var l proto.Listening
		if err := f.Decode(&l); err != nil {
			t.Fatal(err)
		}
		return l.Ports
	}
}
