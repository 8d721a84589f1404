package gcf_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/functions/gcf"
	"github.com/sockerless/sockerless/services/internal/gcpsim"
	"github.com/sockerless/sockerless/services/internal/gcpsim/logging"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// The function image: busybox httpd on $PORT. /cgi-bin/invoke logs the
// invocation body and whether the rootfs was used before, answers, then
// ends the instance (as the agent does); /cgi-bin/hang never answers.
const httpdEntrypoint = `chmod +x /www/cgi-bin/*; httpd -f -p "$PORT" -h /www & echo $! > /tmp/httpd.pid; wait`

var httpdFiles = map[string]string{
	"/www/index.html": "hello from the function image",
	"/www/cgi-bin/invoke": "#!/bin/sh\n" +
		"body=$(head -c \"$CONTENT_LENGTH\")\n" +
		"if [ -e /tmp/used ]; then echo \"rootfs=used\"; else echo \"rootfs=fresh\"; fi >&2\n" +
		"touch /tmp/used\n" +
		"echo \"invoked $REQUEST_METHOD $body\" >&2\n" +
		"echo 'Content-Type: text/plain'\necho\necho done\n" +
		"(sleep 0.2; kill $(cat /tmp/httpd.pid)) >/dev/null 2>&1 </dev/null &\n",
	"/www/cgi-bin/hang": "#!/bin/sh\nsleep 60\n",
}

func needRunc(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run function instances with runc")
	}
	if _, err := exec.LookPath("/usr/sbin/runc"); err != nil {
		t.Skip("needs runc (apt-get install runc)")
	}
	if ok, why := testimage.Available(); !ok {
		t.Skip(why)
	}
}

func pushImage(t *testing.T, srv *gcpsim.Server) string {
	t.Helper()
	img, err := testimage.Busybox(testimage.Options{
		Config: &v1.Config{Entrypoint: []string{"/bin/sh", "-c", httpdEntrypoint}, Env: []string{"PATH=/bin"}},
		Files:  httpdFiles,
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := srv.RegistryHost() + "/sockerless/wrapped:httpd"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	return ref
}

// linesOf returns the service's log lines starting with prefix, waiting a
// moment for at least want of them (output is read asynchronously).
func linesOf(srv *gcpsim.Server, service, prefix string, want int) []logging.Entry {
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := srv.Logs().Entries(func(e logging.Entry) bool {
			return e.Resource["service_name"] == service && strings.HasPrefix(e.Text, prefix)
		})
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInvokeRunsTheImageUnderRunc(t *testing.T) {
	needRunc(t)
	srv := startSim(t)
	image := pushImage(t, srv)
	ctx := context.Background()
	d := newDriver(t, srv, 0)
	url, err := d.Create(ctx, "fn-httpd", image)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	inv := proto.Invocation{ContainerID: "c-one", Secret: "x", CallbackURL: "ws://127.0.0.1:1", LingerSeconds: 1}

	t.Run("an invocation reaches the image's server", func(t *testing.T) {
		if err := d.Invoke(ctx, url+"/cgi-bin/invoke", inv); err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		got := linesOf(srv, "fn-httpd", "invoked ", 1)
		if len(got) != 1 || !strings.Contains(got[0].Text, `POST {"containerId":"c-one"`) {
			t.Fatalf("instance logs = %+v, want the POSTed invocation", got)
		}
	})
	t.Run("after the instance exits the next invocation gets a fresh one", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for len(srv.Instances()) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if len(srv.Instances()) != 0 {
			t.Fatal("the first instance did not end after its process exited")
		}
		inv.ContainerID = "c-two"
		if err := d.Invoke(ctx, url+"/cgi-bin/invoke", inv); err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		invoked := linesOf(srv, "fn-httpd", "invoked ", 2)
		fresh := linesOf(srv, "fn-httpd", "rootfs=", 2)
		if len(invoked) != 2 || invoked[0].Labels["instanceId"] == invoked[1].Labels["instanceId"] {
			t.Errorf("invocations ran on instances %+v, want two different ones", invoked)
		}
		for _, e := range fresh {
			if e.Text != "rootfs=fresh" {
				t.Errorf("instance %s saw a used rootfs", e.Labels["instanceId"])
			}
		}
		if st := srv.Stats(); st.InstancesStarted != 2 {
			t.Errorf("instances started = %d, want 2", st.InstancesStarted)
		}
	})
	t.Run("the request timeout answers 504 and kills the instance", func(t *testing.T) {
		short := newDriver(t, srv, 1)
		slowURL, err := short.Create(ctx, "fn-slow", image)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		start := time.Now()
		err = short.Invoke(ctx, slowURL+"/cgi-bin/hang", inv)
		var se *gcf.StatusError
		if !errors.As(err, &se) || se.Code != 504 || engine.KindOf(err) != engine.KindUnavailable {
			t.Fatalf("Invoke = %v, want a 504 unavailable error", err)
		}
		if d := time.Since(start); d < time.Second || d > 5*time.Second {
			t.Errorf("timed out after %s, want about 1s", d)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(srv.Instances()) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := len(srv.Instances()); n != 0 {
			t.Errorf("%d instances still live after the timeout", n)
		}
	})
}
