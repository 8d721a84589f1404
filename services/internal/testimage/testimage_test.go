package testimage

import "testing"

func TestBusyboxHasShellAndConfig(t *testing.T) {
	if ok, why := Available(); !ok {
		t.Skip(why)
	}
	img, err := Busybox(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "sh" {
		t.Fatalf("config = %+v", cf)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
}
