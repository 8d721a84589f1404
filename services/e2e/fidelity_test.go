package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A kill with SIGKILL answers once the container has exited: an inspect
// right after shows it stopped and a remove right after works.
func TestKillAnswersAfterTheExit(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			for i := 0; i < 3; i++ {
				id := h.run(t, "", map[string]any{"Cmd": []string{"sleep", "300"}})
				h.must(t, http.StatusNoContent, "POST", "/containers/"+id+"/kill", nil, nil)
				st := h.state(t, id)
				if st["Running"] != false || st["Status"] != "exited" || st["ExitCode"] != float64(137) {
					t.Fatalf("state right after kill: %v", st)
				}
				h.must(t, http.StatusNoContent, "DELETE", "/containers/"+id, nil, nil)
			}
		})
	}
}

// The exec start request's Tty says how output is framed, whatever the
// exec was created with (as moby).
func TestExecFramingFollowsTheStartRequest(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := h.run(t, "", map[string]any{"Cmd": []string{"sleep", "300"}})
			for _, c := range []struct {
				name                string
				createTty, startTty bool
				multiplexed         bool
			}{
				{"tty exec started without tty is multiplexed", true, false, true},
				{"plain exec started with tty is raw", false, true, false},
				{"plain exec started plain is multiplexed", false, false, true},
			} {
				t.Run(c.name, func(t *testing.T) {
					var ex struct{ Id string }
					h.must(t, http.StatusCreated, "POST", "/containers/"+id+"/exec", map[string]any{
						"Cmd": []string{"echo", "hello"}, "Tty": c.createTty, "AttachStdout": true, "AttachStderr": true,
					}, &ex)
					_, b := h.call(t, "POST", "/exec/"+ex.Id+"/start", map[string]any{"Tty": c.startTty})
					framed := len(b) >= 8 && b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0
					if framed != c.multiplexed || !strings.Contains(string(b), "hello") {
						t.Fatalf("output %q: multiplexed=%v, want %v", b, framed, c.multiplexed)
					}
				})
			}
		})
	}
}

// A container waiting for its restart policy's next start is restarting:
// inspect shows Restarting and Running, rm needs force.
func TestRestartingState(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := h.run(t, "", map[string]any{"Cmd": []string{"sh", "-c", "exit 3"},
				"HostConfig": map[string]any{"RestartPolicy": map[string]any{"Name": "always"}}})
			st := h.pollState(t, id, "restarting", func(st map[string]any) bool { return st["Status"] == "restarting" })
			if st["Restarting"] != true || st["Running"] != true {
				t.Fatalf("restarting state: %v", st)
			}
			code, b := h.call(t, "DELETE", "/containers/"+id, nil)
			if code != http.StatusConflict {
				t.Fatalf("rm without force: %d %s", code, b)
			}
			h.must(t, http.StatusNoContent, "DELETE", "/containers/"+id+"?force=1", nil, nil)
		})
	}
}

// Streamed answers send their headers at once, before any body byte, also
// through the forwarder: clients wait for them before they go on.
func TestStreamHeadersGoOutAtOnce(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := h.run(t, "", map[string]any{"Cmd": []string{"sleep", "300"}})
			for _, path := range []string{
				"/containers/" + id + "/logs?follow=1&stdout=1&stderr=1",
				"/containers/" + id + "/wait",
				"/events?filters=" + `{"container":["` + id + `"]}`,
			} {
				method := "GET"
				if strings.HasSuffix(path, "/wait") {
					method = "POST"
				}
				// The container says nothing and runs on: only the headers
				// can come, and they must.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				resp := h.do(t, ctx, method, path, nil)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: status %d", path, resp.StatusCode)
				}
				resp.Body.Close()
				cancel()
			}
		})
	}
}

// docker pull answers a chunked stream of JSON messages, which clients
// decode one by one (docker-py's pull(stream=True, decode=True)).
func TestPullIsAChunkedMessageStream(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s)[:2] { // the Docker engine would pull from the internet
		t.Run(h.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			resp := h.do(t, ctx, "POST", "/images/create?fromImage=busybox&tag=latest", nil)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
				t.Fatalf("status %d, transfer encoding %v: want a chunked 200", resp.StatusCode, resp.TransferEncoding)
			}
			sc := bufio.NewScanner(resp.Body)
			var last map[string]any
			n := 0
			for sc.Scan() {
				if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
					t.Fatalf("message %q: %v", sc.Text(), err)
				}
				n++
			}
			if n < 2 || !strings.HasPrefix(last["status"].(string), "Status: ") {
				t.Fatalf("%d messages, last %v", n, last)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
		})
	}
}

// Starting containers right after removing exited ones finds no instance
// on its way out: every start succeeds (the instances of the removed
// containers end while new invocations are routed).
func TestStartAfterRemovingExitedContainers(t *testing.T) {
	s := requireStack(t)
	h := apiHosts(t, s)[0]
	const n = 5
	for round := 0; round < 4; round++ {
		var old, next []string
		for i := 0; i < n; i++ {
			old = append(old, h.run(t, "", map[string]any{"Cmd": []string{"true"}}))
			next = append(next, h.create(t, "", map[string]any{"Cmd": []string{"sleep", "1"}}))
		}
		for _, id := range old {
			h.pollState(t, id, "exited", func(st map[string]any) bool { return st["Status"] == "exited" })
		}
		for _, id := range old {
			h.must(t, http.StatusNoContent, "DELETE", "/containers/"+id, nil, nil)
		}
		for _, id := range next {
			h.must(t, http.StatusNoContent, "POST", "/containers/"+id+"/start", nil, nil)
		}
		for _, id := range next {
			h.must(t, http.StatusNoContent, "DELETE", "/containers/"+id+"?force=1", nil, nil)
		}
	}
}

// Swarm routes answer as an engine outside a swarm: 503 with its texts.
func TestSwarmRoutesAnswerNotInASwarm(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			for _, c := range []struct{ method, path, want string }{
				{"POST", "/swarm/leave?force=1", "This node is not part of a swarm"},
				{"GET", "/swarm", "This node is not a swarm manager."},
				{"GET", "/nodes", "This node is not a swarm manager."},
				{"GET", "/services", "This node is not a swarm manager."},
				{"GET", "/secrets", "This node is not a swarm manager."},
				{"GET", "/tasks", "This node is not a swarm manager."},
				{"GET", "/configs", "This node is not a swarm manager."},
			} {
				code, b := h.call(t, c.method, c.path, nil)
				var m struct{ Message string }
				_ = json.Unmarshal(b, &m)
				if code != http.StatusServiceUnavailable || !strings.HasPrefix(m.Message, c.want) {
					t.Errorf("%s %s: %d %s, want 503 %q", c.method, c.path, code, b, c.want)
				}
			}
		})
	}
}

// docker tag names an image anew; stats carry the network counters;
// container prune reports the bytes it freed; docker update's resources
// show in inspect.
func TestTagStatsPruneUpdate(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			h.must(t, http.StatusCreated, "POST", "/images/busybox/tag?repo=fidelity-tagged&tag=v1", nil, nil)
			var img struct{ RepoTags []string }
			h.must(t, http.StatusOK, "GET", "/images/fidelity-tagged:v1/json", nil, &img)
			if !strings.Contains(strings.Join(img.RepoTags, " "), "fidelity-tagged:v1") {
				t.Errorf("tags after docker tag: %v", img.RepoTags)
			}
			h.call(t, "DELETE", "/images/fidelity-tagged:v1", nil)

			id := h.run(t, "", map[string]any{"Cmd": []string{"sleep", "300"}, "HostConfig": map[string]any{"CpuShares": 2}})
			var st map[string]any
			h.must(t, http.StatusOK, "GET", "/containers/"+id+"/stats?stream=0", nil, &st)
			if nets, _ := st["networks"].(map[string]any); len(nets) == 0 {
				t.Errorf("stats without networks: %v", st["networks"])
			}
			h.must(t, http.StatusOK, "POST", "/containers/"+id+"/update", map[string]any{"CpuShares": 3}, nil)
			var c struct{ HostConfig struct{ CpuShares int } }
			h.must(t, http.StatusOK, "GET", "/containers/"+id+"/json", nil, &c)
			if c.HostConfig.CpuShares != 3 {
				t.Errorf("CpuShares after update: %d", c.HostConfig.CpuShares)
			}

			out := h.run(t, "", map[string]any{"Cmd": []string{"sh", "-c", "echo some output to keep; echo data > /tmp/written"}, "Labels": map[string]string{"fidelity-prune": h.name}})
			h.must(t, http.StatusOK, "POST", "/containers/"+out+"/wait", nil, nil)
			var rep struct {
				ContainersDeleted []string
				SpaceReclaimed    int64
			}
			h.must(t, http.StatusOK, "POST", `/containers/prune?filters={"label":["fidelity-prune=`+h.name+`"]}`, nil, &rep)
			if len(rep.ContainersDeleted) != 1 || rep.SpaceReclaimed <= 0 {
				t.Errorf("prune: %+v", rep)
			}
		})
	}
}

// Many short execs in a row, some in parallel, each read to its end: no
// output is ever lost (the exit is stored after the output, and the
// stream ends only after both).
func TestExecOutputIsNeverLost(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s)[:2] {
		t.Run(h.name, func(t *testing.T) {
			id := h.run(t, "", map[string]any{"Cmd": []string{"sleep", "300"}})
			errs := make(chan string, 64)
			for w := 0; w < 4; w++ {
				go func(w int) {
					for i := 0; i < 25; i++ {
						want := strings.Repeat("x", i*97) + "end"
						var ex struct{ Id string }
						h.must(t, http.StatusCreated, "POST", "/containers/"+id+"/exec", map[string]any{
							"Cmd": []string{"sh", "-c", "printf %s " + want}, "AttachStdout": true, "AttachStderr": true,
						}, &ex)
						_, b := h.call(t, "POST", "/exec/"+ex.Id+"/start", map[string]any{})
						got := demux(b)
						if got != want {
							errs <- "worker " + string(rune('0'+w)) + ": got " + got
							return
						}
					}
					errs <- ""
				}(w)
			}
			for w := 0; w < 4; w++ {
				if e := <-errs; e != "" {
					t.Error(e)
				}
			}
		})
	}
}

// demux returns the stdout of a multiplexed stream.
func demux(b []byte) string {
	var out strings.Builder
	for len(b) >= 8 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		if len(b) < 8+n {
			break
		}
		if b[0] == 1 {
			out.Write(b[8 : 8+n])
		}
		b = b[8+n:]
	}
	return out.String()
}
