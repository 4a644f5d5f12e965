// Package flags has the flag types Parley's commands share.
package flags

import (
	"flag"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Parse parses args into fs and refuses positional arguments, which
// Parley's servers do not take.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// Strings is a repeatable string flag.
type Strings []string

func (s *Strings) String() string     { return strings.Join(*s, ",") }
func (s *Strings) Set(v string) error { *s = append(*s, v); return nil }

// AddrInfo parses a peer multiaddr such as
// /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... into the peer and its address.
func AddrInfo(flagName, value string) (peer.AddrInfo, error) {
	if value == "" {
		return peer.AddrInfo{}, fmt.Errorf("--%s is required: the server's multiaddr ending in /p2p/<peer ID>, as printed by parley-rendezvous", flagName)
	}
	ai, err := peer.AddrInfoFromString(value)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("--%s %q: %w (want a multiaddr ending in /p2p/<peer ID>)", flagName, value, err)
	}
	return *ai, nil
}
