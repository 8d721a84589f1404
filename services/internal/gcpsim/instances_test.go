package gcpsim_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sockerless/sockerless/services/internal/gcpsim"
	"github.com/sockerless/sockerless/services/internal/gcpsim/logging"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// needRunc skips tests that run real containers where they cannot.
func needRunc(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containers with runc")
	}
	if _, err := exec.LookPath("/usr/sbin/runc"); err != nil {
		t.Skip("needs runc (apt-get install runc)")
	}
	if ok, why := testimage.Available(); !ok {
		t.Skip(why)
	}
}

// The instance image: busybox httpd on $PORT serving /www, with CGI
// scripts to identify the instance, end it, and hang.
const entrypoint = `chmod +x /www/cgi-bin/*; echo "instance starting on $PORT"; echo to-stderr >&2; ` +
	`httpd -f -p "$PORT" -h /www & echo $! > /tmp/httpd.pid; wait`

var cgi = map[string]string{
	"/www/cgi-bin/id": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n" +
		"if [ -e /tmp/mark ]; then m=old; else m=new; fi\ntouch /tmp/mark\necho \"$(hostname) $m $FOO\"\n",
	"/www/cgi-bin/exit": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho bye\n" +
		"(sleep 0.3; kill $(cat /tmp/httpd.pid)) >/dev/null 2>&1 </dev/null &\n",
	"/www/cgi-bin/close": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho closing\n" +
		"(kill $(cat /tmp/httpd.pid); sleep 2) >/dev/null 2>&1 </dev/null &\n",
	"/www/cgi-bin/crash": "#!/bin/sh\nkill -9 -1\n", // everything but pid 1, which then exits
	"/www/cgi-bin/sleep": "#!/bin/sh\nsleep 30\necho 'Content-Type: text/plain'\necho\necho late\n",
}

// pushHTTPD pushes the instance image with index.html holding index and
// returns its reference.
func pushHTTPD(t testing.TB, srv *gcpsim.Server, tag, index string) string {
	t.Helper()
	files := map[string]string{"/www/index.html": index}
	for k, v := range cgi {
		files[k] = v
	}
	return pushImage(t, srv, "httpd:"+tag, entrypoint, files)
}

// pushImage pushes a busybox image running the shell script entry with
// files added to gcpsim's registry and returns its reference.
func pushImage(t testing.TB, srv *gcpsim.Server, nameTag, entry string, files map[string]string) string {
	t.Helper()
	img, err := testimage.Busybox(testimage.Options{
		Config: &v1.Config{
			Entrypoint: []string{"/bin/sh", "-c", entry},
			Env:        []string{"PATH=/bin", "FOO=from-image"},
		},
		Files: files,
	})
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	ref := srv.RegistryHost() + "/sockerless/" + nameTag
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createService creates a service of image with FOO=from-service and env
// ("NAME=value") in its environment.
func createService(t testing.TB, rc *run.ServicesClient, id, image string, timeout time.Duration, maxInstances int32, env ...string) *runpb.Service {
	t.Helper()
	vars := []*runpb.EnvVar{{Name: "FOO", Values: &runpb.EnvVar_Value{Value: "from-service"}}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars = append(vars, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: v}})
	}
	op, err := rc.CreateService(context.Background(), &runpb.CreateServiceRequest{
		Parent: parent, ServiceId: id,
		Service: &runpb.Service{Template: &runpb.RevisionTemplate{
			Containers:                    []*runpb.Container{{Image: image, Env: vars}},
			Timeout:                       durationpb.New(timeout),
			MaxInstanceRequestConcurrency: 1,
			Scaling:                       &runpb.RevisionScaling{MaxInstanceCount: maxInstances},
		}},
	})
	if err != nil {
		t.Fatalf("CreateService: %v", err)
	}
	svc, err := op.Wait(context.Background())
	if err != nil {
		t.Fatalf("CreateService wait: %v", err)
	}
	return svc
}

func TestInstancesAreRuncContainers(t *testing.T) {
	needRunc(t)
	state := t.TempDir()
	srv, err := gcpsim.Start(context.Background(), gcpsim.Config{
		StateDir: state, QueueTimeout: 300 * time.Millisecond, StopGrace: time.Second, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			srv.Close()
		}
	})
	_, rc := clients(t, srv)
	ref := pushHTTPD(t, srv, "v1", "hello from v1")
	svc := createService(t, rc, "web", ref, 2*time.Second, 1)
	url := svc.GetUri()

	t.Run("cold start serves the image", func(t *testing.T) {
		code, body := get(t, url+"/index.html")
		if code != 200 || body != "hello from v1" {
			t.Fatalf("GET index = %d %q", code, body)
		}
		port := portOf(t, srv)
		waitFor(t, "the instance's stdout and stderr in the logs", func() bool {
			var out, errs bool
			for _, e := range srv.Logs().Entries(nil) {
				out = out || (e.Text == "instance starting on "+port && e.Severity == "DEFAULT")
				errs = errs || (e.Text == "to-stderr" && e.Severity == "ERROR" && e.Resource["service_name"] == "web")
			}
			return out && errs
		})
	})

	var first string
	t.Run("an idle instance is reused", func(t *testing.T) {
		_, a := get(t, url+"/cgi-bin/id")
		_, b := get(t, url+"/cgi-bin/id")
		fa, fb := strings.Fields(a), strings.Fields(b)
		if len(fa) != 3 || len(fb) != 3 {
			t.Fatalf("id answers %q, %q", a, b)
		}
		if fa[0] != fb[0] || fb[1] != "old" {
			t.Errorf("second request not on the same instance: %q then %q", a, b)
		}
		if fa[2] != "from-service" {
			t.Errorf("FOO = %q, want the service env to override the image's", fa[2])
		}
		first = fa[0]
	})

	t.Run("an exited instance is replaced by a fresh one", func(t *testing.T) {
		if code, body := get(t, url+"/cgi-bin/exit"); code != 200 || body != "bye" {
			t.Fatalf("exit = %d %q", code, body)
		}
		waitFor(t, "the instance to end", func() bool { return len(srv.Instances()) == 0 })
		_, b := get(t, url+"/cgi-bin/id")
		f := strings.Fields(b)
		if len(f) != 3 || f[0] == first || f[1] != "new" {
			t.Errorf("after exit got %q, want a new instance (not %s) on a fresh rootfs", b, first)
		}
	})

	t.Run("the platform logs the instance's exit", func(t *testing.T) {
		waitFor(t, "an exit entry in the system log", func() bool {
			return len(srv.Logs().Entries(func(e logging.Entry) bool {
				return strings.HasSuffix(e.LogName, "varlog%2Fsystem") && strings.HasPrefix(e.Text, "Container called exit(")
			})) > 0
		})
	})

	t.Run("a request to an instance that stopped listening goes to a new one", func(t *testing.T) {
		if code, body := get(t, url+"/cgi-bin/close"); code != 200 || body != "closing" {
			t.Fatalf("close = %d %q", code, body)
		}
		started := srv.Stats().InstancesStarted
		time.Sleep(300 * time.Millisecond) // httpd is gone; the instance lingers 2s
		if code, body := get(t, url+"/index.html"); code != 200 || body != "hello from v1" {
			t.Errorf("GET = %d %q, want it served by a new instance", code, body)
		}
		if got := srv.Stats().InstancesStarted; got != started+1 {
			t.Errorf("instances started %d, want %d", got, started+1)
		}
		waitFor(t, "the old instance to end", func() bool { return len(srv.Instances()) == 1 })
	})

	t.Run("a busy revision at max instances answers 429", func(t *testing.T) {
		var wg sync.WaitGroup
		var slowCode int
		wg.Add(1)
		go func() {
			defer wg.Done()
			slowCode, _ = get(t, url+"/cgi-bin/sleep")
		}()
		waitFor(t, "the slow request to occupy the instance", func() bool {
			in := srv.Instances()
			return len(in) == 1 && in[0].Active == 1
		})
		code, _ := get(t, url+"/index.html")
		if code != http.StatusTooManyRequests {
			t.Errorf("second request = %d, want 429", code)
		}
		wg.Wait()
		if slowCode != http.StatusGatewayTimeout {
			t.Errorf("slow request = %d, want 504 after the 2s timeout", slowCode)
		}
	})

	t.Run("a timed out request's instance is killed", func(t *testing.T) {
		waitFor(t, "the timed out instance to be gone", func() bool { return len(srv.Instances()) == 0 })
		if srv.Stats().Timeouts != 1 || srv.Stats().Rejected != 1 {
			t.Errorf("stats = %+v, want 1 timeout and 1 rejected", srv.Stats())
		}
	})

	t.Run("a new revision serves the new image", func(t *testing.T) {
		get(t, url+"/index.html") // an instance of v1 stays idle
		ref2 := pushHTTPD(t, srv, "v2", "hello from v2")
		cur, err := rc.GetService(context.Background(), &runpb.GetServiceRequest{Name: svc.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		cur.Template.Containers[0].Image = ref2
		op, err := rc.UpdateService(context.Background(), &runpb.UpdateServiceRequest{Service: cur})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the old revision's idle instance to stop", func() bool { return len(srv.Instances()) == 0 })
		if code, body := get(t, url+"/index.html"); code != 200 || body != "hello from v2" {
			t.Errorf("after update GET = %d %q", code, body)
		}
	})

	t.Run("an instance that ends during a request answers 503", func(t *testing.T) {
		code, body := get(t, url+"/cgi-bin/crash")
		if code != http.StatusServiceUnavailable {
			t.Errorf("crash = %d %q, want 503", code, body)
		}
		waitFor(t, "the crashed instance to be gone", func() bool { return len(srv.Instances()) == 0 })
		if code, body := get(t, url+"/index.html"); code != 200 || body != "hello from v2" {
			t.Errorf("after the crash GET = %d %q", code, body)
		}
	})

	t.Run("shutdown kills and deletes every instance", func(t *testing.T) {
		if len(srv.Instances()) == 0 {
			t.Fatal("expected a live instance before shutdown")
		}
		closed = true
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("/usr/sbin/runc", "--root", state+"/run/runc", "list", "-q").Output()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("runc list after shutdown = %q, %v; want none", out, err)
		}
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mounts), state) {
			t.Errorf("mounts left under %s", state)
		}
	})
}

// portOf returns the PORT of the single live instance.
func portOf(t *testing.T, srv *gcpsim.Server) string {
	in := srv.Instances()
	if len(in) != 1 {
		t.Fatalf("want one instance, have %+v", in)
	}
	return strconv.Itoa(in[0].Port)
}

func TestInstancesOnCopiedRootfs(t *testing.T) {
	needRunc(t)
	srv := startSim(t, gcpsim.Config{CopyRootfs: true, StopGrace: time.Second, Logger: testLogger(t)})
	if srv.Overlay() {
		t.Fatal("CopyRootfs set but instances use overlayfs")
	}
	_, rc := clients(t, srv)
	svc := createService(t, rc, "copied", pushHTTPD(t, srv, "copy", "copied rootfs"), 10*time.Second, 2)
	if code, body := get(t, svc.GetUri()+"/index.html"); code != 200 || body != "copied rootfs" {
		t.Fatalf("GET = %d %q", code, body)
	}
	_, a := get(t, svc.GetUri()+"/cgi-bin/id")
	if f := strings.Fields(a); len(f) != 3 || f[1] != "new" {
		t.Errorf("id = %q, want a fresh rootfs", a)
	}
}

func TestARevisionsImageIsUnpackedWhileItDeploys(t *testing.T) {
	needRunc(t)
	state := t.TempDir()
	// A deploy far longer than an unpack: the image is ready before it.
	srv := startSim(t, gcpsim.Config{StateDir: state, OperationDelay: time.Minute, Logger: testLogger(t)})
	_, rc := clients(t, srv)
	ref := pushHTTPD(t, srv, "prefetch", "prefetched")
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	op, err := rc.CreateService(context.Background(), &runpb.CreateServiceRequest{
		Parent: parent, ServiceId: "prefetch",
		Service: &runpb.Service{Template: &runpb.RevisionTemplate{Containers: []*runpb.Container{{Image: ref}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(state, "run", "images", desc.Digest.Hex, "rootfs", "www", "index.html")
	waitFor(t, "the image unpacked while its revision deploys", func() bool {
		b, err := os.ReadFile(rootfs)
		return err == nil && string(b) == "prefetched"
	})
	if _, err := op.Poll(context.Background()); err != nil || op.Done() {
		t.Fatalf("the deploy ended (%v) before the check: the test proves nothing", err)
	}
}
