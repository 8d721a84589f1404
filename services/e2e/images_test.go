package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// changeScript changes a busybox container's files in every way docker
// diff tells apart, then stays up so its files can be read.
const changeScript = "mkdir -p /a/b; touch /test /a/b/c; rm /bin/ls; echo x > /etc/passwd; echo ready; sleep 300"

// changedContainer runs changeScript and waits until it has made its
// changes.
func changedContainer(t *testing.T, h apiHost) string {
	t.Helper()
	id := h.run(t, "", map[string]any{"Cmd": []string{"sh", "-c", changeScript}})
	h.pollLogs(t, id, "ready")
	return id
}

// docker diff lists added, changed and deleted paths as the Docker engine
// does (parents of changes changed, sorted by path); a container that has
// never run has no changes (null).
func TestDiffListsChangesAsDocker(t *testing.T) {
	s := requireStack(t)
	want := []map[string]any{
		{"Path": "/a", "Kind": 1.0}, {"Path": "/a/b", "Kind": 1.0}, {"Path": "/a/b/c", "Kind": 1.0},
		{"Path": "/bin", "Kind": 0.0}, {"Path": "/bin/ls", "Kind": 2.0},
		{"Path": "/etc", "Kind": 0.0}, {"Path": "/etc/passwd", "Kind": 0.0}, {"Path": "/test", "Kind": 1.0},
	}
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := changedContainer(t, h)
			var got []map[string]any
			h.must(t, http.StatusOK, "GET", "/containers/"+id+"/changes", nil, &got)
			// The Docker engine lists them in its file system's order,
			// Sockerless by path.
			sort.Slice(got, func(i, j int) bool { return got[i]["Path"].(string) < got[j]["Path"].(string) })
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("changes\n got %v\nwant %v", got, want)
			}
			created := h.create(t, "", map[string]any{"Cmd": []string{"true"}})
			if b := h.must(t, http.StatusOK, "GET", "/containers/"+created+"/changes", nil, nil); strings.TrimSpace(string(b)) != "null" {
				t.Fatalf("changes of a created container: %s", b)
			}
			code, b := h.call(t, "GET", "/containers/nosuch/changes", nil)
			if code != http.StatusNotFound || !strings.Contains(string(b), "No such container: nosuch") {
				t.Fatalf("changes of a missing container: %d %s", code, b)
			}
		})
	}
}

// docker commit makes an image of the container's changes on its image,
// with the container's config, the request's and the changes', whose
// Parent is the container's image; a container run from it sees the
// changed files.
func TestCommitMakesARunnableImage(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := changedContainer(t, h)
			repo := uniq("committed")
			var res struct{ Id string }
			h.must(t, http.StatusCreated, "POST", "/commit?container="+id+"&repo="+repo+"&tag=v1&comment=hello&author=me"+
				"&changes=EXPOSE+8000&changes=CMD+%5B%22cat%22%2C%22%2Fetc%2Fpasswd%22%5D", map[string]any{"Env": []string{"A=1"}}, &res)
			t.Cleanup(func() { h.call(t, "DELETE", "/images/"+res.Id+"?force=1", nil) })
			var img, base map[string]any
			h.must(t, http.StatusOK, "GET", "/images/"+repo+":v1/json", nil, &img)
			h.must(t, http.StatusOK, "GET", "/images/busybox/json", nil, &base)
			cfg := img["Config"].(map[string]any)
			if _, ok := cfg["Entrypoint"]; !ok {
				t.Errorf("Config lacks Entrypoint (API 1.41 shows the whole container config): %v", cfg)
			}
			for k, want := range map[string]any{"Id": res.Id, "Parent": base["Id"], "Comment": "hello", "Author": "me"} {
				if img[k] != want {
					t.Errorf("%s = %v, want %v", k, img[k], want)
				}
			}
			if env := cfg["Env"].([]any); len(env) == 0 || env[0] != "A=1" {
				t.Errorf("Env %v: the request's variable first", env)
			}
			if _, ok := cfg["ExposedPorts"].(map[string]any)["8000/tcp"]; !ok || !reflect.DeepEqual(cfg["Cmd"], []any{"cat", "/etc/passwd"}) {
				t.Errorf("changes not applied: %v", cfg)
			}
			if layers := img["RootFS"].(map[string]any)["Layers"].([]any); len(layers) != 2 {
				t.Errorf("layers %v, want the image's and the commit's", layers)
			}
			out := mustDocker(t, h.host, "run", "--rm", repo+":v1")
			if out != "x\n" {
				t.Errorf("committed image's /etc/passwd: %q", out)
			}
			r := docker(t, h.host, "run", "--rm", repo+":v1", "sh", "-c", "test -e /test && test -d /a/b && ! test -e /bin/ls && echo ok")
			if r.stdout != "ok\n" {
				t.Errorf("committed files: %q %q", r.stdout, r.stderr)
			}
			var hist []map[string]any
			h.must(t, http.StatusOK, "GET", "/images/"+repo+":v1/history", nil, &hist)
			if len(hist) < 2 || hist[0]["Id"] != res.Id || hist[0]["Comment"] != "hello" || hist[1]["Id"] != base["Id"] {
				t.Errorf("history %v", hist)
			}
		})
	}
}

// docker export writes the container's files (what it changed too)
// without Sockerless's own; docker import makes an image of such a tar,
// with the asked changes, that runs.
func TestExportImportRoundTrip(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := changedContainer(t, h)
			_, tarball := h.call(t, "GET", "/containers/"+id+"/export", nil)
			names := map[string]bool{}
			tr := tar.NewReader(bytes.NewReader(tarball))
			for {
				hd, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("export is not a tar: %v", err)
				}
				names[strings.TrimSuffix(hd.Name, "/")] = true
			}
			for _, n := range []string{"test", "a/b/c", "bin/busybox", "etc/passwd"} {
				if !names[n] {
					t.Errorf("export lacks %s", n)
				}
			}
			for _, n := range []string{"bin/ls", ".sockerless", ".sockerless/agent"} {
				if names[n] {
					t.Errorf("export has %s", n)
				}
			}
			repo := uniq("imported")
			_, b := h.call(t, "POST", "/images/create?fromSrc=-&repo="+repo+"&tag=v2&message=imp&changes=USER+65534&changes=CMD+%5B%22id%22%2C%22-u%22%5D", tarball)
			var st struct{ Status string }
			if err := json.Unmarshal(bytes.TrimSpace(b), &st); err != nil || !strings.HasPrefix(st.Status, "sha256:") {
				t.Fatalf("import answer %s", b)
			}
			t.Cleanup(func() { h.call(t, "DELETE", "/images/"+st.Status+"?force=1", nil) })
			if out := mustDocker(t, h.host, "run", "--rm", repo+":v2"); out != "65534\n" {
				t.Errorf("imported image's CMD and USER: %q", out)
			}
			if out := mustDocker(t, h.host, "run", "--rm", repo+":v2", "cat", "/etc/passwd"); out != "x\n" {
				t.Errorf("imported image's files: %q", out)
			}
		})
	}
}

// docker save and docker load round trip: the loaded image keeps its ID
// and names and runs; a name that does not exist is a 404 and an archive
// that is not one is an error message in load's stream.
func TestSaveLoadRoundTrip(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			name := uniq("saved")
			mustDocker(t, h.host, "tag", "busybox", name+":v1")
			t.Cleanup(func() { docker(t, h.host, "rmi", "-f", name+":v1") })
			id := strings.TrimSpace(mustDocker(t, h.host, "image", "inspect", "--format", "{{.Id}}", name+":v1"))
			path := filepath.Join(t.TempDir(), "saved.tar")
			mustDocker(t, h.host, "save", "-o", path, name+":v1")
			mustDocker(t, h.host, "rmi", name+":v1")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r := dockerIn(t, h.host, data, "load")
			if r.code != 0 || r.stdout != "Loaded image: "+name+":v1\n" {
				t.Fatalf("load: %d %q %q", r.code, r.stdout, r.stderr)
			}
			if got := strings.TrimSpace(mustDocker(t, h.host, "image", "inspect", "--format", "{{.Id}}", name+":v1")); got != id {
				t.Fatalf("loaded ID %s, saved %s", got, id)
			}
			if out := mustDocker(t, h.host, "run", "--rm", name+":v1", "echo", "loaded"); out != "loaded\n" {
				t.Fatalf("run loaded image: %q", out)
			}
			code, b := h.call(t, "GET", "/images/get?names=nosuch", nil)
			if code != http.StatusNotFound || !strings.Contains(string(b), "No such image: nosuch") {
				t.Fatalf("save of a missing image: %d %s", code, b)
			}
			code, b = h.call(t, "POST", "/images/load", []byte("abc"))
			var m struct{ Error string }
			_ = json.Unmarshal(bytes.TrimSpace(b), &m)
			if code != http.StatusOK || m.Error != "Error processing tar file(exit status 1): unexpected EOF" {
				t.Fatalf("load of a non-archive: %d %s", code, b)
			}
		})
	}
}

// docker push copies an image to a registry the user names, with the
// client's credentials; a later pull of that name finds it there.
func TestPushToARegistry(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			ref := s.registry + "/" + uniq("pushed") + ":v1"
			mustDocker(t, h.host, "tag", "busybox", ref)
			out := mustDocker(t, h.host, "push", ref)
			if !strings.Contains(out, "Pushed") || !strings.Contains(out, "v1: digest: sha256:") {
				t.Fatalf("push output %q", out)
			}
			mustDocker(t, h.host, "rmi", ref)
			mustDocker(t, h.host, "pull", ref)
			if out := mustDocker(t, h.host, "run", "--rm", ref, "echo", "pushed"); out != "pushed\n" {
				t.Fatalf("run pushed image: %q", out)
			}
			docker(t, h.host, "rmi", ref)
			r := docker(t, h.host, "push", s.registry+"/nosuch:v1")
			if r.code == 0 || !strings.Contains(r.stderr, "An image does not exist locally with the tag: "+s.registry+"/nosuch") {
				t.Fatalf("push of a missing image: %d %q", r.code, r.stderr)
			}
		})
	}
}

// docker system df reports images with their layers' sizes, containers
// with the size of the files they wrote, volumes and an empty build
// cache; docker system df -v prints them.
func TestSystemDF(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := h.run(t, "", map[string]any{"Cmd": []string{"sh", "-c", "dd if=/dev/zero of=/big bs=1k count=100 2>/dev/null; echo ready; sleep 300"}})
			h.pollLogs(t, id, "ready")
			var du struct {
				LayersSize int64
				Images     []map[string]any
				Containers []map[string]any
				Volumes    []any
				BuildCache []any
			}
			h.must(t, http.StatusOK, "GET", "/system/df", nil, &du)
			if du.LayersSize <= 0 || len(du.Images) == 0 || du.Volumes == nil {
				t.Fatalf("system df: %+v", du)
			}
			found := false
			for _, c := range du.Containers {
				if c["Id"] == id {
					found = true
					if size, _ := c["SizeRw"].(float64); size < 100*1024 {
						t.Errorf("container SizeRw %v, want at least the 100 KiB it wrote", c["SizeRw"])
					}
				}
			}
			if !found {
				t.Errorf("system df lacks container %s", id)
			}
			if r := docker(t, h.host, "system", "df", "-v"); r.code != 0 || !strings.Contains(r.stdout, id[:12]) {
				t.Errorf("docker system df -v: %d %q %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// docker image prune removes dangling images no container uses (with
// -a every unused one, label and until filters applied) and reports
// what it deleted and the bytes reclaimed.
func TestImagePrune(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			imp := func(query string) string {
				layer := tarOf(t, [][2]string{{"file", uniq("content")}}) // a layer of its own
				_, b := h.call(t, "POST", "/images/create?fromSrc=-"+query, layer)
				var st struct{ Status string }
				if err := json.Unmarshal(bytes.TrimSpace(b), &st); err != nil || st.Status == "" {
					t.Fatalf("import: %s", b)
				}
				t.Cleanup(func() { h.call(t, "DELETE", "/images/"+st.Status+"?force=1", nil) })
				return st.Status
			}
			dangling := imp("&changes=LABEL+prune%3D" + h.name)
			named := imp("&repo=" + uniq("prunable") + "&changes=LABEL+prune%3D" + h.name)
			var rep struct {
				ImagesDeleted  []map[string]string
				SpaceReclaimed int64
			}
			h.must(t, http.StatusOK, "POST", `/images/prune?filters={"label":["prune=`+h.name+`"]}`, nil, &rep)
			if !deletedID(rep.ImagesDeleted, dangling) || deletedID(rep.ImagesDeleted, named) || rep.SpaceReclaimed <= 0 {
				t.Fatalf("prune of dangling images: %+v", rep)
			}
			h.must(t, http.StatusOK, "POST", `/images/prune?filters={"dangling":["false"],"label":["prune=`+h.name+`"]}`, nil, &rep)
			if !deletedID(rep.ImagesDeleted, named) {
				t.Fatalf("prune -a: %+v", rep)
			}
			h.must(t, http.StatusOK, "POST", `/images/prune?filters={"dangling":["false"],"label":["nosuchlabel"]}`, nil, &rep)
			if len(rep.ImagesDeleted) != 0 || rep.SpaceReclaimed != 0 {
				t.Fatalf("prune matching nothing: %+v", rep)
			}
		})
	}
}

func deletedID(ds []map[string]string, id string) bool {
	for _, d := range ds {
		if d["Deleted"] == id {
			return true
		}
	}
	return false
}

// docker search is refused with a reason: mirrors have no search API.
func TestSearchIsRefused(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		r := docker(t, h.host, "search", "busybox")
		if r.code == 0 || !strings.Contains(r.stderr, "docker search is not supported by Sockerless") {
			t.Fatalf("%s: search: %d %q", h.name, r.code, r.stderr)
		}
	}
}

// pollLogs waits until the container's output holds want.
func (h apiHost) pollLogs(t *testing.T, id, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, b := h.call(t, "GET", "/containers/"+id+"/logs?stdout=1", nil)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: container never printed %q", h.name, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// docker container prune reports the size of the files each removed
// container wrote, as the Docker engine does (asked of the instance,
// which lingers after the exit: this stack's linger outlasts the test).
func TestContainerPruneReportsWrittenFiles(t *testing.T) {
	s := otherStack(t, []string{"--linger", "10m"}, nil)
	for _, h := range apiHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			label := uniq("prune")
			id := h.run(t, "", map[string]any{"Cmd": []string{"dd", "if=/dev/zero", "of=/big", "bs=1k", "count=100"},
				"Labels": map[string]string{label: ""}})
			h.must(t, http.StatusOK, "POST", "/containers/"+id+"/wait", nil, nil)
			var rep struct {
				ContainersDeleted []string
				SpaceReclaimed    int64
			}
			h.must(t, http.StatusOK, "POST", `/containers/prune?filters={"label":["`+label+`"]}`, nil, &rep)
			if len(rep.ContainersDeleted) != 1 || rep.ContainersDeleted[0] != id || rep.SpaceReclaimed < 100*1024 {
				t.Fatalf("prune: %+v, want %s and at least the 100 KiB it wrote", rep, id)
			}
		})
	}
}

// GET /distribution/{name}/json describes an image as its registry has it
// without pulling it (docker-py's inspect_distribution): the manifest's
// descriptor, whose digest is the one a pull records, and its platforms.
// The Docker engine here has no registry to ask, so only Sockerless runs.
func TestDistributionInspect(t *testing.T) {
	s := requireStack(t)
	for _, h := range apiHosts(t, s) {
		if h.name == "docker" {
			continue
		}
		t.Run(h.name, func(t *testing.T) {
			var d struct {
				Descriptor struct {
					MediaType string `json:"mediaType"`
					Digest    string `json:"digest"`
					Size      int64  `json:"size"`
				}
				Platforms []struct {
					Architecture string `json:"architecture"`
					OS           string `json:"os"`
				}
			}
			h.must(t, http.StatusOK, "GET", "/distribution/busybox:latest/json", nil, &d)
			var img struct{ RepoDigests []string }
			h.must(t, http.StatusOK, "GET", "/images/busybox:latest/json", nil, &img)
			if len(img.RepoDigests) == 0 || !strings.HasSuffix(img.RepoDigests[0], "@"+d.Descriptor.Digest) || d.Descriptor.Size <= 0 || d.Descriptor.MediaType == "" {
				t.Fatalf("descriptor %+v; the pulled image's digests %v", d.Descriptor, img.RepoDigests)
			}
			if len(d.Platforms) != 1 || d.Platforms[0].OS != "linux" || d.Platforms[0].Architecture != "amd64" {
				t.Fatalf("platforms %+v, want linux/amd64", d.Platforms)
			}
			// A name with a path, and one the registry does not have.
			h.must(t, http.StatusOK, "GET", "/distribution/docker.io/library/busybox:latest/json", nil, nil)
			code, body := h.call(t, "GET", "/distribution/nosuchimage"+uniq("x")+":latest/json", nil)
			if code != http.StatusNotFound || !strings.Contains(string(body), "nosuchimage") {
				t.Fatalf("an image the registry lacks: %d %s", code, body)
			}
		})
	}
}

// docker rmi of one of an image's names takes that name only: the image
// and its other names stay, and the name is gone from docker images (and
// stays gone when the image is tagged again), as on the Docker engine.
func TestRemoveOneTagOfSeveral(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			repo := uniq("dockersdk.tests.images.test_tag")
			if h.name != "docker" { // the engine has it loaded; a pull would go to the internet
				mustDocker(t, h.host, "pull", "-q", "busybox")
			}
			mustDocker(t, h.host, "tag", "busybox", repo+":some-tag")
			if out := mustDocker(t, h.host, "images", "-q", repo); len(strings.Fields(out)) != 1 {
				t.Fatalf("docker images %s before the rmi: %q", repo, out)
			}
			if out := mustDocker(t, h.host, "rmi", repo+":some-tag"); !strings.Contains(out, "Untagged: "+repo+":some-tag") || strings.Contains(out, "Deleted") {
				t.Fatalf("rmi printed %q", out)
			}
			mustDocker(t, h.host, "tag", "busybox", repo+":other")
			out := mustDocker(t, h.host, "images", "--format", "{{.Repository}}:{{.Tag}}", repo)
			if strings.TrimSpace(out) != repo+":other" {
				t.Fatalf("docker images %s after the rmi and another tag: %q, want only %s:other", repo, out, repo)
			}
			mustDocker(t, h.host, "rmi", repo+":other")
			if out := mustDocker(t, h.host, "images", "-q", "busybox"); strings.TrimSpace(out) == "" {
				t.Fatal("busybox went with its other names")
			}
		})
	}
}
