package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/node"
)

// pathSettle is how long the path watcher lets a change of connections
// settle before it reads the path: DCUtR reports a hole punch just after
// the direct connection it made, and one look then shows "holepunched"
// rather than a passing "direct".
const pathSettle = 100 * time.Millisecond

// notConnected is the label of node.PathTo without a connection.
var notConnected = node.Path{Kind: node.NotConnected}.String()

// pathWatcher emits an EventPath each time the label of the connection to
// a contact's device (node.PathTo: "direct", "holepunched", "relayed via
// …", "not connected", with the transport) changes: a connection opens or closes, or a hole
// punch upgrades a relayed one (node.EvtHolePunched). The event's Contact
// is the contact's status with Peer set to the device whose connection
// changed (which need not be the device messages go to) and Path to that
// device's path.
//
// The swarm calls the watcher's notifiee on its own goroutines; the
// notifiee only marks the peer and wakes the watcher's goroutine, which
// reads paths and asks the engine whose device a peer is.
type pathWatcher struct {
	node *node.Node
	// contactOf is the status of the contact whose device id is, or of
	// the contact named last (the one last emitted for the device, "" if
	// none) when id belongs to no contact any more.
	contactOf func(id peer.ID, last string) (apitype.ContactStatus, bool)
	emit      func(apitype.Event)
	notifiee  *network.NotifyBundle
	punches   event.Subscription // node.EvtHolePunched
	wake      chan struct{}
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu    sync.Mutex // guards the following
	dirty map[peer.ID]struct{}

	// last is what was emitted last for each device that has a
	// connection; only the watcher's goroutine uses it.
	last map[peer.ID]shownPath
}

type shownPath struct{ username, label string }

// startPathWatcher watches n's connections until Close. contactOf and
// emit are called from the watcher's goroutine only, one at a time; they
// must not call back into the watcher.
func startPathWatcher(n *node.Node, contactOf func(peer.ID, string) (apitype.ContactStatus, bool), emit func(apitype.Event)) (*pathWatcher, error) {
	w := &pathWatcher{
		node:      n,
		contactOf: contactOf,
		emit:      emit,
		wake:      make(chan struct{}, 1),
		dirty:     make(map[peer.ID]struct{}),
		last:      make(map[peer.ID]shownPath),
	}
	var err error
	if w.punches, err = n.EventBus().Subscribe(new(node.EvtHolePunched)); err != nil {
		return nil, fmt.Errorf("subscribe to hole punches: %w", err)
	}
	w.notifiee = &network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { w.mark(c.RemotePeer()) },
		DisconnectedF: func(_ network.Network, c network.Conn) { w.mark(c.RemotePeer()) },
	}
	n.Network().Notify(w.notifiee)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Go(func() { w.run(ctx) })
	return w, nil
}

// Close stops watching and waits for the watcher's goroutine.
func (w *pathWatcher) Close() error {
	var err error
	w.closeOnce.Do(func() {
		w.node.Network().StopNotify(w.notifiee)
		w.cancel()
		w.wg.Wait()
		if err = w.punches.Close(); err != nil {
			err = fmt.Errorf("close hole punch subscription: %w", err)
		}
	})
	return err
}

// mark asks the watcher to read id's path. It never blocks.
func (w *pathWatcher) mark(id peer.ID) {
	w.mu.Lock()
	w.dirty[id] = struct{}{}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *pathWatcher) run(ctx context.Context) {
	settle := time.NewTimer(0)
	<-settle.C
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case e, ok := <-w.punches.Out():
			if !ok {
				return
			}
			if h, ok := e.(node.EvtHolePunched); ok {
				w.mark(h.Peer)
			}
			continue
		}
		settle.Reset(pathSettle)
		select {
		case <-ctx.Done():
			return
		case <-settle.C:
		}
		w.mu.Lock()
		dirty := w.dirty
		w.dirty = make(map[peer.ID]struct{})
		w.mu.Unlock()
		for id := range dirty {
			w.check(id)
		}
	}
}

// check emits id's path if it changed since it was last shown.
func (w *pathWatcher) check(id peer.ID) {
	path := w.node.PathTo(id)
	label := apitype.PathLabel(path.String(), path.Transport) // a change of transport is a change too
	shown, ok := w.last[id]
	if shown.label == label || (!ok && label == notConnected) {
		return
	}
	c, ok := w.contactOf(id, shown.username)
	if !ok {
		return // not a contact's device
	}
	if path.Kind == node.NotConnected {
		delete(w.last, id)
	} else {
		w.last[id] = shownPath{username: c.Username, label: label}
	}
	c.Path, c.Transport = path.String(), path.Transport
	w.emit(apitype.Event{Kind: apitype.EventPath, Contact: &c})
}
