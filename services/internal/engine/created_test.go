package engine

import (
	"archive/tar"
	"testing"
)

func TestFsViewResolveAndReplace(t *testing.T) {
	v := fsView{"/": {hdr: &tar.Header{Name: "/", Typeflag: tar.TypeDir}, src: srcMade}}
	v.put("/usr/bin", &tar.Header{Typeflag: tar.TypeDir}, srcImage)
	v.put("/bin", &tar.Header{Typeflag: tar.TypeSymlink, Linkname: "usr/bin"}, srcImage)
	v.put("/usr/bin/sh", &tar.Header{Typeflag: tar.TypeReg}, srcImage)
	v.put("/etc/abs", &tar.Header{Typeflag: tar.TypeSymlink, Linkname: "/usr"}, srcImage)
	v.put("/loop", &tar.Header{Typeflag: tar.TypeSymlink, Linkname: "loop"}, srcImage)
	cases := []struct {
		in    string
		final bool
		want  string
	}{
		{"/bin/sh", false, "/usr/bin/sh"},
		{"/bin", false, "/bin"},
		{"/bin", true, "/usr/bin"},
		{"/etc/abs/bin/sh", true, "/usr/bin/sh"},
		{"bin/../etc", true, "/etc"},
		{"/nope/x", true, "/nope/x"},
		{"/loop/x", true, "/loop/x"}, // gives up after 40 hops
	}
	for _, tc := range cases {
		if got := v.resolve(tc.in, tc.final); got != tc.want {
			t.Errorf("resolve(%q, %v) = %q, want %q", tc.in, tc.final, got, tc.want)
		}
	}
	if v["/etc"] == nil || v["/etc"].src != srcMade || v["/etc"].hdr.Typeflag != tar.TypeDir {
		t.Errorf("missing parent /etc not made as a directory: %+v", v["/etc"])
	}
	// An upload's file replaces the image's directory and all under it.
	v.put("/usr", &tar.Header{Typeflag: tar.TypeReg}, 0)
	if v["/usr/bin/sh"] != nil || v["/usr/bin"] != nil || v["/usr"].src != 0 {
		t.Errorf("a file over a directory left its subtree: %v", v)
	}
	if _, _, ok := v.stat("/bin/sh"); ok {
		t.Error("stat through a replaced directory found a file")
	}
}
