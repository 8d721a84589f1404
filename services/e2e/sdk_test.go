package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Python docker SDK (7.x) drives the same scenarios through its own
// code paths: exec with exit codes and demuxed streams, logs, cp
// (put_archive/get_archive), stats, attach, kill/wait, images by ID and
// digest.
const sdkScript = `
import docker, io, sys, tarfile
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
assert c.ping()
img = c.images.pull("busybox", tag="latest")
ct = c.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2; i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done; sleep 300"], detach=True)
try:
    code, (out, err) = ct.exec_run(["sh", "-c", "echo x-out; echo x-err >&2; exit 4"], demux=True)
    assert code == 4, code
    assert out == b"x-out\n" and err == b"x-err\n", (out, err)
    code, out = ct.exec_run("cat /etc/passwd", user="nobody")
    assert code == 0 and b"root:x:0:0" in out, (code, out)
    logs = ct.logs(stdout=True, stderr=False)
    assert logs == b"out\n", logs
    # docker cp through put_archive / get_archive
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"hello from the sdk\n" * 1000
        ti = tarfile.TarInfo("hello.txt"); ti.size = len(data); ti.mode = 0o640
        tf.addfile(ti, io.BytesIO(data))
    assert ct.put_archive("/tmp", buf.getvalue())
    bits, stat = ct.get_archive("/tmp/hello.txt")
    assert stat["name"] == "hello.txt" and stat["size"] == len(data), stat
    with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tf:
        m = tf.getmember("hello.txt")
        assert tf.extractfile(m).read() == data and m.mode & 0o777 == 0o640, m.mode
    # stats: real numbers from the instance
    st = ct.stats(stream=False)
    assert st["memory_stats"].get("usage", 0) > 0, st["memory_stats"]
    assert st["cpu_stats"]["cpu_usage"]["total_usage"] > 0, st["cpu_stats"]
    assert st["pids_stats"].get("current", 0) >= 1, st.get("pids_stats")
    ct.kill(signal="SIGTERM")
    assert ct.wait()["StatusCode"] == 143
finally:
    ct.remove(force=True)
# attach: the output of a running container as it comes, stdout and stderr
at = c.containers.run("busybox", ["sh", "-c", "sleep 1; echo a1; echo a2 >&2"], detach=True)
try:
    got = b"".join(at.attach(stdout=True, stderr=True, stream=True, logs=True))
    assert got in (b"a1\na2\n", b"a2\na1\n"), got
    assert at.wait()["StatusCode"] == 0
finally:
    at.remove(force=True)
by_id = c.containers.run(img.id, ["echo", "by-id"], remove=True)
assert by_id == b"by-id\n", by_id
digest = img.attrs["RepoDigests"][0]
by_digest = c.containers.run(digest, ["echo", "by-digest"], remove=True)
assert by_digest == b"by-digest\n", by_digest
print("sdk ok")
`

func TestPythonSDK(t *testing.T) {
	s := requireStack(t)
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed (pip install docker)")
	}
	script := filepath.Join(t.TempDir(), "sdk.py")
	if err := os.WriteFile(script, []byte(sdkScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			out, err := exec.Command("python3", script, h.host).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "sdk ok") {
				t.Fatalf("python SDK scenario: %v\n%s", err, out)
			}
		})
	}
}

// slowHeadScript reads every answer's head 0.3 s late, as a client on a
// loaded machine does: the SDK parses the head of a hijacked exec stream
// through a buffer and then reads the raw socket, so output that arrives
// with the head used to be lost (against the Docker engine too).
const slowHeadScript = `
import http.client, sys, time, docker
begin = http.client.HTTPResponse.begin
def late_begin(self):
    time.sleep(0.3)
    return begin(self)
http.client.HTTPResponse.begin = late_begin
c = docker.APIClient(base_url=sys.argv[1], version="1.41")
ct = c.create_container("busybox", "cat", detach=True, stdin_open=True)
c.start(ct)
try:
    cmd = 'sh -c "echo hello out; sleep 0.5; echo hello err >&2"'
    out = c.exec_start(c.exec_create(ct, cmd))
    assert out == b"hello out\nhello err\n", out
    out = list(c.exec_start(c.exec_create(ct, cmd), stream=True))
    assert out == [b"hello out\n", b"hello err\n"], out
    out = c.exec_start(c.exec_create(ct, cmd), demux=True)
    assert out == (b"hello out\n", b"hello err\n"), out
finally:
    c.remove_container(ct, force=True)
print("slow head ok")
`

// A client that reads a hijacked answer's head late still gets the
// stream's first bytes: the stream begins only once it has read the
// head (directly and through the forwarder).
func TestSlowClientKeepsTheFirstExecOutput(t *testing.T) {
	s := requireStack(t)
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed (pip install docker)")
	}
	script := filepath.Join(t.TempDir(), "slowhead.py")
	if err := os.WriteFile(script, []byte(slowHeadScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			out, err := exec.Command("python3", script, h.host).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "slow head ok") {
				t.Fatalf("exec output with a late head read: %v\n%s", err, out)
			}
		})
	}
}
