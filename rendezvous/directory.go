package rendezvous

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/rendezvous/pb"
)

// directory is the list of supernodes that announced themselves recently.
// An entry lives for ttl after its last announcement.
type directory struct {
	ttl time.Duration

	mu      sync.Mutex // guards the following
	entries map[peer.ID]*supernode
}

type supernode struct {
	addrs   [][]byte
	load    *pb.SupernodeLoad
	expires time.Time
}

func newDirectory(ttl time.Duration) *directory {
	return &directory{ttl: ttl, entries: make(map[peer.ID]*supernode)}
}

func (d *directory) announce(p peer.ID, addrs [][]byte, load *pb.SupernodeLoad, now time.Time) {
	if load == nil {
		load = &pb.SupernodeLoad{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.entries[p]; !ok {
		log.Infow("supernode joined", "peer", p)
	}
	d.entries[p] = &supernode{addrs: addrs, load: load, expires: now.Add(d.ttl)}
}

// list returns up to max live supernodes, least loaded first.
func (d *directory) list(max int, now time.Time) []*pb.PeerInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	type ranked struct {
		id peer.ID
		sn *supernode
	}
	var live []ranked
	for id, sn := range d.entries {
		if now.After(sn.expires) {
			log.Infow("supernode expired", "peer", id)
			delete(d.entries, id)
			continue
		}
		live = append(live, ranked{id, sn})
	}
	slices.SortFunc(live, func(a, b ranked) int {
		return cmp.Or(
			cmp.Compare(a.sn.load.Reservations, b.sn.load.Reservations),
			strings.Compare(string(a.id), string(b.id)))
	})
	out := make([]*pb.PeerInfo, 0, min(max, len(live)))
	for _, r := range live[:min(max, len(live))] {
		out = append(out, &pb.PeerInfo{PeerId: []byte(r.id), Addrs: r.sn.addrs})
	}
	return out
}
