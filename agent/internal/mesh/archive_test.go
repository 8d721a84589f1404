package mesh

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sockerless/sockerless/agent/proto"
)

func TestServeArchive(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	stat := func(t *testing.T, path string) proto.ArchiveStat {
		conn, err := serveArchive(proto.MeshOpen{Kind: proto.MeshArchive, Op: "stat", Path: path})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var ans proto.ArchiveStat
		if err := json.NewDecoder(conn).Decode(&ans); err != nil {
			t.Fatal(err)
		}
		return ans
	}
	t.Run("stat of a file answers its size", func(t *testing.T) {
		ans := stat(t, file)
		var st struct {
			Name string
			Size int64
		}
		if ans.Code != proto.ArchiveOK || json.Unmarshal(ans.Stat, &st) != nil || st.Name != "f" || st.Size != 5 {
			t.Fatalf("stat = %+v (%s)", ans, ans.Stat)
		}
	})
	t.Run("stat of a missing path is not found", func(t *testing.T) {
		if ans := stat(t, filepath.Join(dir, "nope")); ans.Code != proto.ArchiveNotFound || ans.Message == "" {
			t.Fatalf("stat = %+v", ans)
		}
	})
	t.Run("get streams the tar and ends", func(t *testing.T) {
		conn, err := serveArchive(proto.MeshOpen{Kind: proto.MeshArchive, Op: "get", Path: file})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		tr := tar.NewReader(conn)
		h, err := tr.Next()
		if err != nil || h.Name != "f" {
			t.Fatalf("first entry %+v, %v", h, err)
		}
		if b, _ := io.ReadAll(tr); string(b) != "hello" {
			t.Fatalf("content %q", b)
		}
		if _, err := tr.Next(); err != io.EOF {
			t.Fatalf("after the file: %v", err)
		}
	})
	t.Run("unknown operation is refused", func(t *testing.T) {
		if _, err := serveArchive(proto.MeshOpen{Kind: proto.MeshArchive, Op: "put", Path: dir}); err == nil {
			t.Fatal("put over the mesh accepted")
		}
	})
}
