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

// sdkNamesakeScript is docker-py's test_create_check_duplicate and what
// follows from it on API 1.41: with check_duplicate False (or left None,
// which the SDK sends as null) a taken name is accepted with docker's
// warning, the name then picks neither network (400 "ambiguous"), and
// picks the one left once the other is removed. With the CLI's
// CheckDuplicate true, or on API 1.44 and later, the name stays unique.
const sdkNamesakeScript = `
import docker, sys
c = docker.APIClient(base_url=sys.argv[1], version="1.41")
name = "sdkdup-" + sys.argv[2]
a = c.create_network(name)
try:
    try:
        c.create_network(name, check_duplicate=True)
        raise AssertionError("check_duplicate=True accepted a taken name")
    except docker.errors.APIError as e:
        assert e.status_code == 409 and "already exists" in str(e), e
    b = c.create_network(name, check_duplicate=False)
    assert b["Id"] != a["Id"], b
    assert b["Warning"] == "Network with name %s (id : %s) already exists" % (name, a["Id"]), b
    assert [n["Name"] for n in c.networks(names=[name])] == [name, name]
    try:
        c.inspect_network(name)
        raise AssertionError("a name two networks share found one")
    except docker.errors.APIError as e:
        assert e.status_code == 400 and "2 matches found based on name: network %s is ambiguous" % name in str(e), e
    assert c.inspect_network(b["Id"])["Name"] == name
    c.remove_network(a["Id"])
    assert c.inspect_network(name)["Id"] == b["Id"]
    c.remove_network(name)
    new = docker.APIClient(base_url=sys.argv[1], version="auto")
    if tuple(map(int, new.api_version.split("."))) >= (1, 44):
        d = new.create_network(name)
        try:
            new.create_network(name, check_duplicate=False)
            raise AssertionError("API 1.44 accepted a taken name")
        except docker.errors.APIError as e:
            assert e.status_code == 409, e
        new.remove_network(d["Id"])
finally:
    for n in c.networks(names=[name]):
        c.remove_network(n["Id"])
print("sdk namesakes ok")
`

func TestPythonSDKNetworkCheckDuplicate(t *testing.T) {
	s := requireStack(t)
	if err := exec.Command("python3", "-c", "import docker").Run(); err != nil {
		t.Skip("the Python docker SDK is not installed (apt-get install python3-docker)")
	}
	script := filepath.Join(t.TempDir(), "sdkdup.py")
	if err := os.WriteFile(script, []byte(sdkNamesakeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			out, err := exec.Command("python3", script, h.host, h.name+runID).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "sdk namesakes ok") {
				t.Fatalf("python SDK namesake networks: %v\n%s", err, out)
			}
		})
	}
}
