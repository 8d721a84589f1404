package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sdkNetworkScript drives client.networks as docker-py's own integration
// tests do (create, list with filters, get, connect with aliases,
// disconnect, remove, prune) and the errors it expects.
const sdkNetworkScript = `
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
suffix = sys.argv[2]
name = "sdknet-" + suffix
names = lambda nets: sorted(n.name for n in nets)
assert {"bridge", "host", "none"} <= {n.name for n in c.networks.list()}
net = c.networks.create(name, labels={"sdk": suffix}, check_duplicate=True)
try:
    try:
        c.networks.create(name, check_duplicate=True)
        raise AssertionError("a duplicate name was accepted")
    except docker.errors.APIError as e:
        assert e.status_code == 409 and "already exists" in str(e), e
    assert names(c.networks.list(names=[name])) == [name]
    assert names(c.networks.list(ids=[net.id])) == [name]
    assert names(c.networks.list(filters={"label": "sdk=" + suffix})) == [name]
    got = c.networks.get(net.id[:12])
    assert got.name == name and got.attrs["Driver"] == "bridge" and got.attrs["Labels"] == {"sdk": suffix}, got.attrs
    try:
        c.networks.get("nope-" + suffix)
        raise AssertionError("a missing network was found")
    except docker.errors.NotFound:
        pass
    ct = c.containers.run("busybox", ["sleep", "300"], detach=True, name="sdkctr-" + suffix)
    try:
        net.connect(ct, aliases=["sdk-alias"])
        net.reload()
        assert ct.id in net.attrs["Containers"], net.attrs["Containers"]
        assert [x.id for x in net.containers] == [ct.id]
        ct.reload()
        ep = ct.attrs["NetworkSettings"]["Networks"][name]
        assert ep["IPAddress"] and "sdk-alias" in ep["Aliases"], ep
        try:
            net.remove()
            raise AssertionError("a network with a member was removed")
        except docker.errors.APIError as e:
            assert "active endpoints" in str(e), e
        net.disconnect(ct)
        net.reload()
        assert net.attrs["Containers"] == {}, net.attrs["Containers"]
    finally:
        ct.remove(force=True)
    pruned = c.networks.prune(filters={"label": "sdk=" + suffix})
    assert pruned["NetworksDeleted"] == [name], pruned
finally:
    try:
        net.remove()
    except docker.errors.NotFound:
        pass
print("sdk networks ok")
`

func TestPythonSDKNetworks(t *testing.T) {
	s := requireStack(t)
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed (apt-get install python3-docker)")
	}
	script := filepath.Join(t.TempDir(), "sdknet.py")
	if err := os.WriteFile(script, []byte(sdkNetworkScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			out, err := exec.Command("python3", script, h.host, h.name+runID).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "sdk networks ok") {
				t.Fatalf("python SDK networks: %v\n%s", err, out)
			}
		})
	}
}
