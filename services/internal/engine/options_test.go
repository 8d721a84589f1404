package engine

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// jsonFields lists the JSON names of t's fields, embedded structs
// flattened as encoding/json flattens them.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

func TestOptionsCoverEveryField(t *testing.T) {
	named := map[string]Option{}
	for _, o := range Options() {
		if _, dup := named[o.Name]; dup {
			t.Errorf("%s is in the table twice", o.Name)
		}
		named[o.Name] = o
		if o.Verdict != Carried && o.set == nil {
			t.Errorf("%s is refused or warned but never detected as set", o.Name)
		}
		if o.Verdict != Carried && o.Why == "" {
			t.Errorf("%s says no why", o.Name)
		}
	}
	want := map[string]bool{}
	for prefix, typ := range map[string]reflect.Type{
		"Config.":     reflect.TypeOf(container.Config{}),
		"HostConfig.": reflect.TypeOf(container.HostConfig{}),
	} {
		for _, f := range jsonFields(typ) {
			want[prefix+f] = true
			if _, ok := named[prefix+f]; !ok {
				t.Errorf("%s%s is not in the options table: say whether it is carried out, refused or warned", prefix, f)
			}
		}
	}
	for n := range named {
		if !want[n] {
			t.Errorf("the table names %s, which is no create option", n)
		}
	}
}

func TestCheckOptions(t *testing.T) {
	minusOne := int64(-1)
	yes := true
	for _, tc := range []struct {
		name     string
		cfg      container.Config
		hc       container.HostConfig
		refused  string // part of the error; "" for none
		warnings int
	}{
		{name: "what the docker CLI sends by default is accepted", hc: container.HostConfig{NetworkMode: "default", Resources: container.Resources{MemorySwappiness: &minusOne}}},
		{name: "privileged is refused by name", hc: container.HostConfig{Privileged: true}, refused: "HostConfig.Privileged"},
		{name: "a volume driver other than local is accepted while no volume is made (see mounts)", hc: container.HostConfig{VolumeDriver: "flocker"}},
		{name: "the local volume driver is accepted", hc: container.HostConfig{VolumeDriver: "local"}},
		{name: "a user network is carried out (the network plane refuses host)", hc: container.HostConfig{NetworkMode: "mynet"}},
		{name: "an unknown runtime is refused as docker does", hc: container.HostConfig{Runtime: "kata"}, refused: "Unknown runtime specified kata"},
		{name: "runc is accepted", hc: container.HostConfig{Runtime: "runc"}},
		{name: "an unknown log driver is refused as docker does", hc: container.HostConfig{LogConfig: container.LogConfig{Type: "asdf"}}, refused: `error looking up logging plugin asdf: plugin "asdf" not found`},
		{name: "a shipping log driver is refused", hc: container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}, refused: "syslog log driver"},
		{name: "cpu shares warn", hc: container.HostConfig{Resources: container.Resources{CPUShares: 512}}, warnings: 1},
		{name: "oom kill disable warns", hc: container.HostConfig{Resources: container.Resources{OomKillDisable: &yes}}, warnings: 1},
		{name: "a domain name warns", cfg: container.Config{Domainname: "example.com"}, warnings: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := checkOptions(&tc.cfg, &tc.hc)
			if tc.refused != "" {
				if err == nil || KindOf(err) != KindInvalid || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err = %v, want a 400 containing %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if len(w) != tc.warnings {
				t.Fatalf("warnings %q, want %d", w, tc.warnings)
			}
		})
	}
}
