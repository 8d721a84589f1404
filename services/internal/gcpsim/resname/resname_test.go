package resname

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wildcard bool
		want     Location
		ok       bool
	}{
		{"a location parses", "projects/p/locations/l", false, Location{"p", "l"}, true},
		{"the wildcard location parses where allowed", "projects/p/locations/-", true, Location{"p", "-"}, true},
		{"the wildcard location is refused elsewhere", "projects/p/locations/-", false, Location{}, false},
		{"a wildcard project is refused", "projects/-/locations/l", true, Location{}, false},
		{"a child name is not a location", "projects/p/locations/l/services/s", false, Location{}, false},
		{"garbage is refused", "p/l", false, Location{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLocation(tc.input, tc.wildcard)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseLocation(%q) = %v, %v", tc.input, got, err)
			}
			if err != nil && status.Code(err) != codes.InvalidArgument {
				t.Errorf("error code %v, want InvalidArgument", status.Code(err))
			}
		})
	}
	loc, id, err := ParseChild("projects/p/locations/l/functions/f", "functions")
	if err != nil || loc.Child("functions", id) != "projects/p/locations/l/functions/f" {
		t.Errorf("ParseChild = %v %q %v", loc, id, err)
	}
	if _, _, err := ParseChild("projects/p/locations/l/services/f", "functions"); err == nil {
		t.Error("ParseChild accepted the wrong collection")
	}
}

func TestCheckID(t *testing.T) {
	for id, ok := range map[string]bool{
		"a": true, "fn-1": true, "sockerless-0123abcd": true,
		"": false, "1fn": false, "fn-": false, "Fn": false, "fn_1": false, "x" + string(make([]byte, 70)): false,
	} {
		if err := CheckID("function", id, 63); (err == nil) != ok {
			t.Errorf("CheckID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestMatches(t *testing.T) {
	all := Location{"p", "-"}
	one := Location{"p", "l"}
	if !Matches(all, "projects/p/locations/x/services/s") || Matches(all, "projects/q/locations/x/services/s") {
		t.Error("wildcard matching is wrong")
	}
	if !Matches(one, "projects/p/locations/l/services/s") || Matches(one, "projects/p/locations/l2/services/s") {
		t.Error("location matching is wrong")
	}
}
