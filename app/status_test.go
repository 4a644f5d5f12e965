package app

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/parleynet/parley/app/apitype"
)

func TestNATTypeNames(t *testing.T) {
	for in, want := range map[network.NATDeviceType]apitype.NATType{
		network.NATDeviceTypeUnknown:             apitype.NATUnknown,
		network.NATDeviceTypeEndpointIndependent: apitype.NATEndpointIndependent,
		network.NATDeviceTypeEndpointDependent:   apitype.NATEndpointDependent,
		network.NATDeviceType(7):                 apitype.NATUnknown,
	} {
		if got := natType(in); got != want {
			t.Errorf("natType(%v): got %q, want %q", in, got, want)
		}
	}
}
