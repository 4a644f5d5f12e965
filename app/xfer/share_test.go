package xfer

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/files"
	"github.com/parleynet/parley/node/nodetest"
)

// userDevice is a device whose certificate names user.
func userDevice(t *testing.T, d *fakeDHT, user string) *device {
	t.Helper()
	dev := &device{node: nodetest.New(t), dir: t.TempDir(), d: d, user: user}
	dev.start(t)
	return dev
}

// fetchFrom downloads l from its From device, which dev can dial.
func (dev *device) fetchFrom(t *testing.T, from *device, l Link) apitype.Transfer {
	t.Helper()
	dev.node.Peerstore().AddAddrs(from.node.ID(), from.node.Addrs(), peerstore.PermanentAddrTTL)
	tr, err := dev.m.GetOffered(l, "")
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestSharedServedToRecipientOnly: content shared with bob is served to
// each of bob's devices and refused to carol, to alice's other device and
// to a peer without a certificate, and it is not announced.
func TestSharedServedToRecipientOnly(t *testing.T) {
	d := &fakeDHT{}
	alice := userDevice(t, d, "alice")
	bob, bobPhone := userDevice(t, d, "bob"), userDevice(t, d, "bob")
	carol, aliceLaptop := userDevice(t, d, "carol"), userDevice(t, d, "alice")
	src, want := randomFile(t, 2<<20+5)
	sh, err := alice.m.Share(t.Context(), src, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if sh.To != "bob" || sh.Size != int64(len(want)) || sh.Files != 1 || sh.Name != "data.bin" || sh.Path != src {
		t.Errorf("Share: got %+v", sh)
	}
	c, err := files.ParseCID(sh.CID)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := (routing{d, alice.node}).FindProviders(t.Context(), c, 0); len(ps) != 0 {
		t.Errorf("shared content was announced: %v", ps)
	}
	d.mu.Lock()
	d.finds = 0
	d.mu.Unlock()
	t.Cleanup(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.finds != 0 {
			t.Errorf("offered downloads looked up providers %d times; they fetch from the offering device alone", d.finds)
		}
	})
	if len(alice.m.Published()) != 0 {
		t.Errorf("shared content is in the published list: %+v", alice.m.Published())
	}
	for _, r := range []struct {
		who  files.Requester
		want bool
	}{
		{files.Requester{Peer: bob.node.ID(), Username: "bob"}, true},
		{files.Requester{Peer: bobPhone.node.ID(), Username: "bob"}, true},
		{files.Requester{Peer: carol.node.ID(), Username: "carol"}, false},
		{files.Requester{Peer: aliceLaptop.node.ID(), Username: "alice"}, false},
		{files.Requester{Peer: bob.node.ID()}, false},
	} {
		if got := alice.m.admit(r.who, c); got != r.want {
			t.Errorf("admit(%+v) = %v, want %v", r.who, got, r.want)
		}
	}

	l := Link{CID: c, Name: sh.Name, Size: sh.Size, From: alice.node.ID()}
	for _, dev := range []*device{bob, bobPhone} {
		done := await(t, dev.m, dev.fetchFrom(t, alice, l).ID, apitype.TransferDone)
		if got, err := os.ReadFile(done.Path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s's download: %d bytes, %v; want the %d shared", dev.user, len(got), err, len(want))
		}
		if len(dev.m.Published()) != 0 {
			t.Errorf("a no-seed download was published: %+v", dev.m.Published())
		}
	}
	for _, dev := range []*device{carol, aliceLaptop} {
		failed := await(t, dev.m, dev.fetchFrom(t, alice, l).ID, apitype.TransferFailed)
		if failed.BytesDone != 0 || !strings.Contains(failed.Error, "not admitted") {
			t.Errorf("%s's download: %d bytes, error %q; want none and \"not admitted\"", dev.user, failed.BytesDone, failed.Error)
		}
	}

	// The share survives a restart.
	if err := alice.m.Close(); err != nil {
		t.Fatal(err)
	}
	alice.start(t)
	if !alice.m.admit(files.Requester{Peer: bob.node.ID(), Username: "bob"}, c) {
		t.Error("after a restart the shared content is refused to bob")
	}

	// Unsharing stops serving it, unless it is published too.
	if _, err := alice.m.Publish(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	if err := alice.m.Unshare(t.Context(), c, "bob"); err != nil {
		t.Fatal(err)
	}
	if !alice.m.admit(files.Requester{Peer: carol.node.ID(), Username: "carol"}, c) {
		t.Error("unsharing withdrew content that is still published")
	}
	if err := alice.m.Unpublish(t.Context(), sh.CID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.m.Share(t.Context(), src, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := alice.m.Unpublish(t.Context(), sh.CID); err != nil {
		t.Fatal(err)
	}
	if !alice.m.admit(files.Requester{Peer: bob.node.ID(), Username: "bob"}, c) {
		t.Error("unpublishing withdrew content still shared with bob")
	}
	if err := alice.m.Unshare(t.Context(), c, "bob"); err != nil {
		t.Fatal(err)
	}
	if alice.m.admit(files.Requester{Peer: bob.node.ID(), Username: "bob"}, c) {
		t.Error("after Unshare bob is still admitted")
	}
}
