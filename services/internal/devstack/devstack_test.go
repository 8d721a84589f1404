package devstack

import (
	"slices"
	"testing"
)

func TestCallbackHostPorts(t *testing.T) {
	tests := []struct {
		name     string
		callback string
		want     []int
	}{
		{"the TCP listener on loopback is relayed", "ws://127.0.0.1:2375", []int{2375}},
		{"other loopback addresses are not relayed", "ws://127.0.0.2:2375", nil},
		{"localhost", "ws://localhost:9000", []int{9000}},
		{"IPv6 loopback", "ws://[::1]:2375", []int{2375}},
		{"a wildcard listener's own address", "ws://[::]:2375", []int{2375}},
		{"an IPv4 wildcard", "ws://0.0.0.0:2375", []int{2375}},
		{"the scheme's default port", "wss://localhost", []int{443}},
		{"another host is reached through egress", "wss://cp.example.com", nil},
		{"a LAN address is reached through egress", "ws://192.168.1.5:2375", nil},
		{"nonsense relays nothing", "::", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := callbackHostPorts(tc.callback); !slices.Equal(got, tc.want) {
				t.Errorf("callbackHostPorts(%q) = %v, want %v", tc.callback, got, tc.want)
			}
		})
	}
}
