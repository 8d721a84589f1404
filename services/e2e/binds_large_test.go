package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeTree writes files files of size bytes each under dir, 100 to a
// directory, and returns their total size.
func makeTree(t testing.TB, dir string, files, size int) int64 {
	t.Helper()
	buf := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range files {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i/100), fmt.Sprintf("f%05d", i))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return int64(files) * int64(size)
}

// TestBindLargeTrees carries a 10,000-file tree and a 1 GB file each way.
// It moves several GB (about 90 s on a quiet 2-core machine), so -short
// leaves it out; CI runs it.
func TestBindLargeTrees(t *testing.T) {
	if testing.Short() {
		t.Skip("moves several GB; runs without -short")
	}
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			dir := t.TempDir()
			makeTree(t, filepath.Join(dir, "in"), 10000, 1024)
			writeRandomFile(t, filepath.Join(dir, "big.in"), 1<<30)
			sum := sha256File(t, filepath.Join(dir, "big.in"))
			out := mustDocker(t, h.host, "run", "--rm", "-v", dir+":/w", "busybox", "sh", "-c",
				"find /w/in -type f | wc -l; sha256sum /w/big.in | cut -d' ' -f1; "+
					"mkdir /w/out && cd /w/out && i=0; while [ $i -lt 10000 ]; do [ $((i%100)) = 0 ] && mkdir d$((i/100)); echo $i > d$((i/100))/f$i; i=$((i+1)); done; "+
					"dd if=/w/big.in of=/w/big.out bs=1M 2>/dev/null; sha256sum /w/big.out | cut -d' ' -f1")
			want := fmt.Sprintf("10000\n%s\n%s\n", sum, sum)
			if strings.TrimSpace(out) != strings.TrimSpace(want) {
				t.Fatalf("in the container: %q, want %q", out, want)
			}
			n := 0
			_ = filepath.WalkDir(filepath.Join(dir, "out"), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					n++
				}
				return nil
			})
			if n != 10000 {
				t.Fatalf("%d of the container's 10000 files on the host", n)
			}
			if got := readFile(filepath.Join(dir, "out", "d99", "f9999")); got != "9999\n" {
				t.Fatalf("f9999 on the host: %q", got)
			}
			if got := sha256File(t, filepath.Join(dir, "big.out")); got != sum {
				t.Fatalf("the container's 1 GB file on the host: sha256 %s, want %s", got, sum)
			}
		})
	}
}
