package xfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/files"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

// fakeDHT is a provider table shared by the managers of a test.
type fakeDHT struct {
	mu        sync.Mutex
	providers map[cid.Cid][]peer.AddrInfo
	finds     int // FindProviders calls
}

type routing struct {
	d    *fakeDHT
	self *node.Node
}

func (r routing) Provide(_ context.Context, c cid.Cid) error {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if r.d.providers == nil {
		r.d.providers = map[cid.Cid][]peer.AddrInfo{}
	}
	r.d.providers[c] = append(r.d.providers[c], peer.AddrInfo{ID: r.self.ID(), Addrs: r.self.Addrs()})
	return nil
}

func (r routing) Withdraw(c cid.Cid) bool {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	var kept []peer.AddrInfo
	for _, ai := range r.d.providers[c] {
		if ai.ID != r.self.ID() {
			kept = append(kept, ai)
		}
	}
	r.d.providers[c] = kept
	return true
}

func (r routing) FindProviders(_ context.Context, c cid.Cid, _ int) ([]peer.AddrInfo, error) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	r.d.finds++
	return append([]peer.AddrInfo(nil), r.d.providers[c]...), nil
}

// device is a node with a manager on a data directory.
type device struct {
	node *node.Node
	dir  string
	d    *fakeDHT
	m    *Manager
	// uploadLimit is Config.UploadLimit, for a device started by hand.
	uploadLimit int64

	outsider bool   // presents no certificate
	user     string // the username its certificate names; "" means user-<peer>

	mu     sync.Mutex
	events []event // what Emit was called with
}

type event struct {
	at time.Time
	apitype.Transfer
}

func newDevice(t *testing.T, d *fakeDHT) *device {
	t.Helper()
	dev := &device{node: nodetest.New(t), dir: t.TempDir(), d: d}
	dev.start(t)
	for _, name := range []string{"files.db", "files.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dev.dir, name)); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	return dev
}

func (dev *device) start(t *testing.T) {
	t.Helper()
	m, err := New(Config{
		Host:          dev.node,
		Routing:       routing{dev.d, dev.node},
		IndexFile:     filepath.Join(dev.dir, "files.db"),
		StateFile:     filepath.Join(dev.dir, "transfers.json"),
		DownloadDir:   filepath.Join(dev.dir, "downloads"),
		FindRetries:   1,
		RetryInterval: 10 * time.Millisecond,
		Certify:       testCertify,
		Certificate:   dev.certificate,
		UploadLimit:   dev.uploadLimit,
		Emit: func(tr apitype.Transfer) {
			dev.mu.Lock()
			dev.events = append(dev.events, event{time.Now(), tr})
			dev.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	dev.m = m
	t.Cleanup(func() { _ = m.Close() })
}

// testCertify stands for the engine's certificate check: a device's
// certificate is "member:" and its peer ID, valid only from that peer,
// then "/" and the username if the device has one.
func testCertify(p peer.ID, raw []byte) (string, time.Time, error) {
	rest, ok := strings.CutPrefix(string(raw), "member:"+p.String())
	if !ok {
		return "", time.Time{}, errors.New("bad signature")
	}
	if user, ok := strings.CutPrefix(rest, "/"); ok && user != "" {
		return user, time.Now().Add(time.Hour), nil
	}
	if rest != "" {
		return "", time.Time{}, errors.New("bad signature")
	}
	return "user-" + p.String()[:8], time.Now().Add(time.Hour), nil
}

// certificate is what the device presents: its own, unless it is not a
// member.
func (dev *device) certificate() []byte {
	if dev.outsider {
		return nil
	}
	if dev.user != "" {
		return []byte("member:" + dev.node.ID().String() + "/" + dev.user)
	}
	return []byte("member:" + dev.node.ID().String())
}

func randomFile(t *testing.T, size int) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.bin")
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// await waits until transfer id of m is in state want.
func await(t *testing.T, m *Manager, id string, want apitype.TransferState) apitype.Transfer {
	t.Helper()
	var got apitype.Transfer
	tstest.WaitFor(t, 30*time.Second, func() error {
		for _, x := range m.Transfers() {
			if x.ID == id {
				got = x
				if x.State == want {
					return nil
				}
				return fmt.Errorf("transfer %s is %s (%s), want %s", id, x.State, x.Error, want)
			}
		}
		return fmt.Errorf("no transfer %s", id)
	})
	return got
}

func TestPublishGetSeed(t *testing.T) {
	d := &fakeDHT{}
	alice, bob := newDevice(t, d), newDevice(t, d)
	src, want := randomFile(t, 2<<20+3)
	pub, err := alice.m.Publish(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLink(pub.Link)
	if err != nil {
		t.Fatal(err)
	}
	member := files.Requester{Peer: bob.node.ID(), Username: "bob"}
	if !alice.m.admit(member, l.CID) {
		t.Errorf("published content: admit says no to a member")
	}
	if alice.m.admit(files.Requester{Peer: bob.node.ID()}, l.CID) {
		t.Errorf("published content: admit says yes to a peer without a certificate")
	}
	other := Link{CID: l.CID}
	other.CID, _ = cid.Decode("bafkr4ibv3ryuw6plrafgxuvwjhp3ohmq7cmisuniwbxlyqxisjqp37zq4m")
	if alice.m.admit(member, other.CID) {
		t.Errorf("unpublished content: admit says yes")
	}
	tr, err := bob.m.Get(l, "", false)
	if err != nil {
		t.Fatal(err)
	}
	again, err := bob.m.Get(l, "", false)
	if err != nil || again.ID != tr.ID {
		t.Errorf("getting the same content again: got %+v, %v; want transfer %s", again, err, tr.ID)
	}
	done := await(t, bob.m, tr.ID, apitype.TransferDone)
	got, err := os.ReadFile(done.Path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("downloaded %s: %d bytes, %v; want the %d published", done.Path, len(got), err, len(want))
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		for _, p := range bob.m.Published() {
			if p.CID == pub.CID && p.Path == done.Path {
				return nil
			}
		}
		return errors.New("bob does not seed what he downloaded")
	})
}

// TestOutsiderRefused: a peer that knows the link and can dial the
// publisher but holds no membership certificate gets nothing, and its
// transfer says it was not admitted.
func TestOutsiderRefused(t *testing.T) {
	d := &fakeDHT{}
	alice := newDevice(t, d)
	eve := &device{node: nodetest.New(t), dir: t.TempDir(), d: d, outsider: true}
	eve.start(t)
	src, _ := randomFile(t, 1<<20)
	pub, err := alice.m.Publish(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLink(pub.Link)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := eve.m.Get(l, "", false)
	if err != nil {
		t.Fatal(err)
	}
	failed := await(t, eve.m, tr.ID, apitype.TransferFailed)
	if failed.BytesDone != 0 || !strings.Contains(failed.Error, "not admitted") || failed.ErrorCode != apitype.TransferNotAdmitted {
		t.Errorf("outsider's transfer: %d bytes, error %q; code %q; want none, \"not admitted\", %q", failed.BytesDone, failed.Error, failed.ErrorCode, apitype.TransferNotAdmitted)
	}
}

func TestFailResumeCancel(t *testing.T) {
	d := &fakeDHT{}
	alice, bob := newDevice(t, d), newDevice(t, d)
	src, _ := randomFile(t, 1<<20)
	pub, err := alice.m.Publish(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := ParseLink(pub.Link)
	if err := alice.m.Unpublish(t.Context(), pub.CID); err != nil {
		t.Fatal(err)
	}
	l.From = "" // nobody provides it now
	tr, err := bob.m.Get(l, "", true)
	if err != nil {
		t.Fatal(err)
	}
	failed := await(t, bob.m, tr.ID, apitype.TransferFailed)
	if failed.Error == "" || failed.ErrorCode != apitype.TransferNoProviders {
		t.Errorf("failed with error %q, code %q; want a text and %q", failed.Error, failed.ErrorCode, apitype.TransferNoProviders)
	}
	if _, err := alice.m.Publish(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	if err := bob.m.Resume(tr.ID); err != nil {
		t.Fatal(err)
	}
	if done := await(t, bob.m, tr.ID, apitype.TransferDone); done.Error != "" || done.ErrorCode != "" {
		t.Errorf("done transfer keeps the failure: %q, %q", done.Error, done.ErrorCode)
	}
	if err := bob.m.Cancel(tr.ID); err != nil {
		t.Errorf("cancelling a finished transfer: %v", err)
	}
	for _, op := range []func(string) error{bob.m.Pause, bob.m.Resume, bob.m.Cancel} {
		if err := op("nope"); !errors.Is(err, ErrNoSuchTransfer) {
			t.Errorf("unknown transfer: got %v, want ErrNoSuchTransfer", err)
		}
	}
}

// TestRestart: a manager closed during a download starts it again on the
// same data directory and finishes it; one closed while paused stays
// paused.
func TestRestart(t *testing.T) {
	d := &fakeDHT{}
	alice, bob := newDevice(t, d), newDevice(t, d)
	src, want := randomFile(t, 24<<20)
	pub, err := alice.m.Publish(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := ParseLink(pub.Link)
	tr, err := bob.m.Get(l, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.m.Close(); err != nil {
		t.Fatal(err)
	}
	bob.start(t)
	done := await(t, bob.m, tr.ID, apitype.TransferDone)
	if got, err := os.ReadFile(done.Path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("downloaded %s: %d bytes, %v; want the %d published", done.Path, len(got), err, len(want))
	}
	checkEvents(t, bob, tr.ID)

	dir := t.TempDir()
	tr2, err := bob.m.Get(l, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.m.Pause(tr2.ID); err != nil {
		t.Fatal(err)
	}
	paused := await(t, bob.m, tr2.ID, apitype.TransferPaused)
	if err := bob.m.Close(); err != nil {
		t.Fatal(err)
	}
	bob.start(t)
	if got := await(t, bob.m, tr2.ID, apitype.TransferPaused); got.BytesDone != paused.BytesDone {
		t.Errorf("after a restart: got %+v, want it paused at %d bytes", got, paused.BytesDone)
	}
	if err := bob.m.Cancel(tr2.ID); err != nil {
		t.Fatal(err)
	}
	await(t, bob.m, tr2.ID, apitype.TransferCancelled)
	if _, err := os.Stat(filepath.Join(dir, ".parley-partial")); err == nil {
		if entries, _ := os.ReadDir(filepath.Join(dir, ".parley-partial")); len(entries) > 0 {
			t.Errorf("a cancelled download left its partial data")
		}
	}
}

// checkEvents checks the events of transfer id: progress comes at most
// apitype.TransferEventsPerSecond times a second, and the last event says
// the transfer is done.
func checkEvents(t *testing.T, dev *device, id string) {
	t.Helper()
	dev.mu.Lock()
	defer dev.mu.Unlock()
	var last *event
	progress := 0
	for i := range dev.events {
		ev := &dev.events[i]
		if ev.ID != id {
			continue
		}
		if last != nil && last.State == apitype.TransferRunning && ev.State == apitype.TransferRunning {
			progress++
			if gap := ev.at.Sub(last.at); gap < time.Second/apitype.TransferEventsPerSecond {
				t.Errorf("progress events %v apart, want at most %d a second", gap, apitype.TransferEventsPerSecond)
			}
		}
		last = ev
	}
	if last == nil || last.State != apitype.TransferDone || last.BytesDone != last.BytesTotal {
		t.Errorf("last event of %s: got %+v, want it done", id, last)
	}
	t.Logf("%d progress events", progress)
}

// TestRepublishChanged: publishing a path again after it changed replaces
// the old content, which is withdrawn.
func TestRepublishChanged(t *testing.T) {
	d := &fakeDHT{}
	alice := newDevice(t, d)
	src, _ := randomFile(t, 1000)
	first, err := alice.m.Publish(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := alice.m.Publish(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	if second.CID == first.CID {
		t.Fatalf("changed content kept its CID %s", first.CID)
	}
	if got := alice.m.Published(); len(got) != 1 || got[0].CID != second.CID {
		t.Errorf("Published: got %+v, want only %s", got, second.CID)
	}
	c, _ := cid.Decode(first.CID)
	if ps, _ := (routing{d, alice.node}).FindProviders(t.Context(), c, 0); len(ps) != 0 {
		t.Errorf("the old content is still provided by %v", ps)
	}
}

// TestUploadLimit: a device started with an upload limit serves its
// published content no faster than the limit (a lower bound only: a loaded
// machine may be slower still; unlimited, 2 MiB on loopback takes a
// fraction of the bound).
func TestUploadLimit(t *testing.T) {
	const limit, size = 1 << 20, 2 << 20
	d := &fakeDHT{}
	alice := &device{node: nodetest.New(t), dir: t.TempDir(), d: d, uploadLimit: limit}
	alice.start(t)
	bob := newDevice(t, d)
	src, want := randomFile(t, size)
	pub, err := alice.m.Publish(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLink(pub.Link)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tr, err := bob.m.Get(l, "", false)
	if err != nil {
		t.Fatal(err)
	}
	done := await(t, bob.m, tr.ID, apitype.TransferDone)
	took := time.Since(start)
	if got, err := os.ReadFile(done.Path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("downloaded %s: %d bytes, %v; want the %d published", done.Path, len(got), err, len(want))
	}
	// The server's bucket starts full: at most 256 KiB go unpaced.
	least := time.Duration(float64(size-256<<10) / limit * float64(time.Second))
	t.Logf("%d MiB at %d MiB/s took %v (at least %v)", size>>20, limit>>20, took, least)
	if took < least {
		t.Errorf("took %v, want at least %v under the upload limit", took, least)
	}
}
