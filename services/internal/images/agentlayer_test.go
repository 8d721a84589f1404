package images

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sockerless/sockerless/services/internal/testimage"
)

func TestDynamicAgentBringsItsLoader(t *testing.T) {
	self, err := os.Executable() // this test binary: dynamic where cgo is on
	if err != nil {
		t.Fatal(err)
	}
	interp, libs, err := dynamicDeps(self)
	if err != nil {
		t.Fatal(err)
	}
	if interp == "" {
		t.Skip("the test binary is static (cgo off): no loader to bring")
	}
	al, err := buildAgentLayer(self)
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) == 0 || al.entrypoint[0] != libDir+"/"+filepath.Base(interp) || al.entrypoint[len(al.entrypoint)-1] != AgentPath {
		t.Fatalf("dynamic agent: libs %v entrypoint %v", libs, al.entrypoint)
	}
	for _, l := range append([]string{interp}, libs...) {
		want, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := fileIn(t, al.layer, strings.TrimPrefix(libDir, "/")+"/"+filepath.Base(l)); !bytes.Equal(got, want) {
			t.Fatalf("layer lacks %s", l)
		}
	}
}

func TestStaticAgentGoesInAlone(t *testing.T) {
	if ok, why := testimage.Available(); !ok {
		t.Skip(why)
	}
	interp, _, err := dynamicDeps(testimage.BusyboxPath) // busybox-static
	if err != nil {
		t.Fatal(err)
	}
	if interp != "" {
		t.Fatalf("busybox-static has interpreter %q", interp)
	}
	al, err := buildAgentLayer(testimage.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(al.entrypoint, []string{AgentPath}) {
		t.Fatalf("entrypoint %v, want the agent alone", al.entrypoint)
	}
	if h, _ := fileIn(t, al.layer, strings.TrimPrefix(libDir, "/")+"/"); h != nil {
		t.Fatal("a static agent's layer has a library directory")
	}
}

func TestAgentLayerIsReproducible(t *testing.T) {
	if ok, why := testimage.Available(); !ok {
		t.Skip(why)
	}
	tests := []struct {
		name     string
		a, b     string
		wantSame bool
	}{
		{"same binary, same layer", copyAgent(t, ""), copyAgent(t, ""), true},
		{"different binary, different layer", copyAgent(t, ""), copyAgent(t, "v2"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := buildAgentLayer(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := buildAgentLayer(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if (a.sum == b.sum) != tt.wantSame || (digestOf(t, a.layer) == digestOf(t, b.layer)) != tt.wantSame {
				t.Fatalf("sums %s %s, want same: %v", a.sum, b.sum, tt.wantSame)
			}
		})
	}
}
