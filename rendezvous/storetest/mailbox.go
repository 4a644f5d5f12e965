package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
)

// bigQuota never gets in the way.
var bigQuota = server.MailQuota{Messages: 1000, Bytes: 1 << 30}

// mailbox is a sender (alice) and a recipient (bob) with two devices that
// published keys, contacts of each other.
type mailbox struct {
	s          server.Store
	alice, bob server.User
	aliceDev   peer.ID
	bob1, bob2 peer.ID
	bob1Key    []byte
	bob2Key    []byte
}

func newMailbox(t *testing.T, s server.Store) *mailbox {
	t.Helper()
	m := &mailbox{s: s}
	m.alice, m.aliceDev = register(t, s, "alice")
	m.bob, m.bob1 = register(t, s, "bob")
	m.bob2 = test.RandPeerIDFatal(t)
	if err := s.EnrolDevice(t.Context(), m.bob.ID, m.bob2); err != nil {
		t.Fatalf("EnrolDevice: %v", err)
	}
	request(t, s, m.alice, m.bob, server.Requested)
	accept(t, s, m.bob, m.alice)
	m.bob1Key, m.bob2Key = []byte("key of bob1"), []byte("key of bob2")
	putKey(t, s, m.bob, m.bob1, m.bob1Key, base)
	putKey(t, s, m.bob, m.bob2, m.bob2Key, base)
	return m
}

func putKey(t *testing.T, s server.Store, u server.User, dev peer.ID, key []byte, at time.Time) {
	t.Helper()
	if err := s.PutDeviceKey(t.Context(), u.ID, dev, key, at); err != nil {
		t.Fatalf("PutDeviceKey(%s): %v", dev, err)
	}
}

// deposit is a message from alice to bob sealed to the given devices, at
// base+at, kept for a day.
func (m *mailbox) deposit(id string, at time.Duration, devs ...peer.ID) server.Deposit {
	d := server.Deposit{
		Recipient: m.bob.ID, Sender: m.alice.ID, SenderDevice: m.aliceDev, MessageID: id,
		At: base.Add(at), Expires: base.Add(at + 24*time.Hour),
	}
	for _, dev := range devs {
		d.Copies = append(d.Copies, server.MailCopy{Device: dev, Ciphertext: []byte("sealed " + id + " for " + dev.String())})
	}
	return d
}

func (m *mailbox) mustDeposit(t *testing.T, d server.Deposit, q server.MailQuota) server.DepositResult {
	t.Helper()
	res, err := m.s.Deposit(t.Context(), d, q)
	if err != nil {
		t.Fatalf("Deposit(%s): %v", d.MessageID, err)
	}
	return res
}

// checkMail fetches the device's mail at now and compares message IDs.
func checkMail(t *testing.T, s server.Store, dev peer.ID, now time.Time, want ...string) []server.Mail {
	t.Helper()
	mail, err := s.FetchMail(t.Context(), dev, now, 100)
	if err != nil {
		t.Fatalf("FetchMail(%s): %v", dev, err)
	}
	var got []string
	for _, m := range mail {
		got = append(got, m.MessageID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FetchMail(%s): got %v, want %v", dev, got, want)
	}
	n, err := s.CountMail(t.Context(), dev, now)
	if err != nil || n != len(want) {
		t.Errorf("CountMail(%s): got %d, %v, want %d", dev, n, err, len(want))
	}
	return mail
}

func ack(t *testing.T, s server.Store, dev peer.ID, want int, ids ...int64) {
	t.Helper()
	n, err := s.AckMail(t.Context(), dev, ids)
	if err != nil || n != want {
		t.Errorf("AckMail(%s, %v): got %d, %v, want %d", dev, ids, n, err, want)
	}
}

func runMailbox(t *testing.T, open opener) {
	t.Run("DeviceKeys", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		m := newMailbox(t, s)
		keys, err := s.DeviceKeys(ctx, m.bob.ID)
		if err != nil || len(keys) != 2 || keys[0].Device != m.bob1 || !bytes.Equal(keys[0].Key, m.bob1Key) ||
			!keys[0].Published.Equal(base) || keys[1].Device != m.bob2 {
			t.Fatalf("DeviceKeys: got %+v, %v, want bob1's then bob2's", keys, err)
		}
		putKey(t, s, m.bob, m.bob1, []byte("new key"), base.Add(time.Hour))
		keys, _ = s.DeviceKeys(ctx, m.bob.ID)
		if len(keys) != 2 || !bytes.Equal(keys[0].Key, []byte("new key")) {
			t.Errorf("DeviceKeys after a new key: got %+v", keys)
		}
		if err := s.PutDeviceKey(ctx, m.alice.ID, m.bob1, []byte("k"), base); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("PutDeviceKey(another user's device): got %v, want ErrNotFound", err)
		}
		if err := s.RevokeDevice(ctx, m.bob.ID, m.bob2); err != nil {
			t.Fatal(err)
		}
		if err := s.PutDeviceKey(ctx, m.bob.ID, m.bob2, []byte("k"), base); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
			t.Errorf("PutDeviceKey(revoked): got %v, want ErrDeviceRevoked", err)
		}
		keys, _ = s.DeviceKeys(ctx, m.bob.ID)
		if len(keys) != 1 || keys[0].Device != m.bob1 {
			t.Errorf("DeviceKeys after a revocation: got %+v, want bob1's only", keys)
		}
		if keys, err := s.DeviceKeys(ctx, m.alice.ID); err != nil || len(keys) != 0 {
			t.Errorf("DeviceKeys(no keys): got %+v, %v", keys, err)
		}
	})

	t.Run("AreContacts", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		carol, _ := register(t, s, "carol")
		request(t, s, carol, m.bob, server.Requested)
		for _, c := range []struct {
			a, b server.User
			want bool
		}{{m.alice, m.bob, true}, {m.bob, m.alice, true}, {carol, m.bob, false}, {m.bob, carol, false}} {
			if got, err := s.AreContacts(t.Context(), c.a.ID, c.b.ID); err != nil || got != c.want {
				t.Errorf("AreContacts(%s, %s): got %v, %v, want %v", c.a.Name, c.b.Name, got, err, c.want)
			}
		}
	})

	t.Run("DeliveredToEveryDeviceThenGone", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		now := base.Add(time.Minute)
		res := m.mustDeposit(t, m.deposit("m1", 0, m.bob1, m.bob2), bigQuota)
		if res.Duplicate || res.ID == 0 {
			t.Errorf("Deposit: got %+v, want a new id", res)
		}
		m.mustDeposit(t, m.deposit("m2", time.Second, m.bob2, m.bob1), bigQuota)
		mail := checkMail(t, s, m.bob1, now, "m1", "m2")
		got := mail[0]
		if got.ID != res.ID || got.Sender != "alice" || got.SenderDevice != m.aliceDev || !got.Deposited.Equal(base) ||
			!bytes.Equal(got.Ciphertext, []byte("sealed m1 for "+m.bob1.String())) {
			t.Errorf("FetchMail: got %+v", got)
		}
		checkMail(t, s, m.aliceDev, now)

		// Depositing again changes nothing.
		again := m.mustDeposit(t, m.deposit("m1", time.Minute, m.bob1, m.bob2), bigQuota)
		if !again.Duplicate || again.ID != res.ID {
			t.Errorf("Deposit again: got %+v, want duplicate of %d", again, res.ID)
		}
		checkMail(t, s, m.bob1, now, "m1", "m2")

		ack(t, s, m.bob1, 1, res.ID)
		ack(t, s, m.bob1, 0, res.ID, 999999) // already gone, unknown
		ack(t, s, m.aliceDev, 0, mail[1].ID) // not alice's copy
		checkMail(t, s, m.bob1, now, "m2")
		checkMail(t, s, m.bob2, now, "m1", "m2")
		ack(t, s, m.bob2, 1, res.ID)
		checkMail(t, s, m.bob2, now, "m2")
		// m1 is gone: a quota of one message holds m2 only.
		if _, err := s.Deposit(t.Context(), m.deposit("m3", time.Minute, m.bob1, m.bob2), server.MailQuota{Messages: 2, Bytes: 1 << 20}); err != nil {
			t.Errorf("Deposit after m1 was delivered everywhere: %v", err)
		}
		// Once gone, a message ID may be deposited anew.
		if res := m.mustDeposit(t, m.deposit("m1", 2*time.Minute, m.bob1, m.bob2), bigQuota); res.Duplicate {
			t.Errorf("Deposit of a delivered message ID: got a duplicate")
		}
	})

	t.Run("CopiesMustMatchDevices", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		stranger := test.RandPeerIDFatal(t)
		for name, devs := range map[string][]peer.ID{
			"missing device":   {m.bob1},
			"unknown device":   {m.bob1, m.bob2, stranger},
			"sender's device":  {m.bob1, m.aliceDev},
			"device twice":     {m.bob1, m.bob1},
			"no copies at all": nil,
		} {
			if _, err := s.Deposit(t.Context(), m.deposit("m", 0, devs...), bigQuota); !errors.Is(err, rendezvous.ErrDeviceKeysChanged) {
				t.Errorf("%s: got %v, want ErrDeviceKeysChanged", name, err)
			}
		}
		checkMail(t, s, m.bob1, base)
		// A device without a key gets no copy.
		bob3 := test.RandPeerIDFatal(t)
		if err := s.EnrolDevice(t.Context(), m.bob.ID, bob3); err != nil {
			t.Fatal(err)
		}
		m.mustDeposit(t, m.deposit("m", 0, m.bob1, m.bob2), bigQuota)
	})

	t.Run("Quota", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		q := server.MailQuota{Messages: 2, Bytes: 1 << 20}
		m.mustDeposit(t, m.deposit("m1", 0, m.bob1, m.bob2), q)
		m.mustDeposit(t, m.deposit("m2", 0, m.bob1, m.bob2), q)
		if _, err := s.Deposit(t.Context(), m.deposit("m3", 0, m.bob1, m.bob2), q); !errors.Is(err, rendezvous.ErrMailboxFull) {
			t.Errorf("third message over a quota of two: got %v, want ErrMailboxFull", err)
		}
		// A duplicate is not refused: it takes no room.
		if res, err := s.Deposit(t.Context(), m.deposit("m2", 0, m.bob1, m.bob2), q); err != nil || !res.Duplicate {
			t.Errorf("duplicate at the quota: got %+v, %v", res, err)
		}
		// Bytes: each deposit holds two copies of about 70 bytes.
		d := m.deposit("m4", 0, m.bob1, m.bob2)
		small := server.MailQuota{Messages: 100, Bytes: 3*d.Size() - 1}
		if _, err := s.Deposit(t.Context(), d, small); !errors.Is(err, rendezvous.ErrMailboxFull) {
			t.Errorf("over the byte quota: got %v, want ErrMailboxFull", err)
		}
		// Expired mail takes no room.
		if _, err := s.Deposit(t.Context(), m.deposit("m5", 25*time.Hour, m.bob1, m.bob2), q); err != nil {
			t.Errorf("deposit once the others expired: %v", err)
		}
		// Another recipient's mailbox is separate.
		carol, carolDev := register(t, s, "carol")
		request(t, s, m.alice, carol, server.Requested)
		accept(t, s, carol, m.alice)
		putKey(t, s, carol, carolDev, []byte("key"), base)
		d = m.deposit("m1", 0, carolDev)
		d.Recipient = carol.ID
		if _, err := s.Deposit(t.Context(), d, q); err != nil {
			t.Errorf("deposit to another user: %v", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		m.mustDeposit(t, m.deposit("m1", 0, m.bob1, m.bob2), bigQuota)
		m.mustDeposit(t, m.deposit("m2", time.Hour, m.bob1, m.bob2), bigQuota)
		checkMail(t, s, m.bob1, base.Add(24*time.Hour-time.Millisecond), "m1", "m2")
		// Expired mail is never delivered, swept or not.
		checkMail(t, s, m.bob1, base.Add(24*time.Hour), "m2")
		if n, err := s.ExpireMail(t.Context(), base.Add(24*time.Hour)); err != nil || n != 1 {
			t.Errorf("ExpireMail: got %d, %v, want 1", n, err)
		}
		if n, err := s.ExpireMail(t.Context(), base.Add(24*time.Hour)); err != nil || n != 0 {
			t.Errorf("ExpireMail again: got %d, %v, want 0", n, err)
		}
		checkMail(t, s, m.bob2, base, "m2")
		if n, err := s.ExpireMail(t.Context(), base.Add(48*time.Hour)); err != nil || n != 1 {
			t.Errorf("ExpireMail later: got %d, %v, want 1", n, err)
		}
		checkMail(t, s, m.bob2, base)
	})

	t.Run("RevokedDeviceMailDropped", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		r1 := m.mustDeposit(t, m.deposit("m1", 0, m.bob1, m.bob2), bigQuota)
		m.mustDeposit(t, m.deposit("m2", 0, m.bob1, m.bob2), bigQuota)
		ack(t, s, m.bob1, 1, r1.ID) // m1 waits for bob2 only
		if err := s.RevokeDevice(t.Context(), m.bob.ID, m.bob2); err != nil {
			t.Fatal(err)
		}
		checkMail(t, s, m.bob2, base)
		checkMail(t, s, m.bob1, base, "m2")
		// m1 is gone altogether: it may be deposited anew, to bob1 only.
		if res := m.mustDeposit(t, m.deposit("m1", 0, m.bob1), bigQuota); res.Duplicate {
			t.Error("m1 still stored after its last device was revoked")
		}
		if _, err := s.Deposit(t.Context(), m.deposit("m3", 0, m.bob1, m.bob2), bigQuota); !errors.Is(err, rendezvous.ErrDeviceKeysChanged) {
			t.Errorf("deposit to a revoked device: got %v, want ErrDeviceKeysChanged", err)
		}
	})

	t.Run("ConcurrentDepositsKeepTheQuota", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		q := server.MailQuota{Messages: 5, Bytes: 1 << 20}
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.Deposit(t.Context(), m.deposit(fmt.Sprintf("m%d", i), 0, m.bob1, m.bob2), q)
			})
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, rendezvous.ErrMailboxFull):
				t.Errorf("deposit %d: %v", i, err)
			}
		}
		if ok != q.Messages {
			t.Errorf("%d of %d concurrent deposits stored, want exactly the quota, %d", ok, n, q.Messages)
		}
	})

	t.Run("ConcurrentAcksDeleteTheMessage", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		const n = 20
		ids := make([]int64, n)
		for i := range n {
			ids[i] = m.mustDeposit(t, m.deposit(fmt.Sprintf("m%d", i), 0, m.bob1, m.bob2), bigQuota).ID
		}
		// Both devices acknowledge each message at the same moment.
		var wg sync.WaitGroup
		for _, id := range ids {
			start := make(chan struct{})
			for _, dev := range []peer.ID{m.bob1, m.bob2} {
				wg.Go(func() {
					<-start
					if _, err := s.AckMail(t.Context(), dev, []int64{id}); err != nil {
						t.Errorf("AckMail: %v", err)
					}
				})
			}
			close(start)
		}
		wg.Wait()
		// Every message is gone: a quota of n messages takes n more.
		q := server.MailQuota{Messages: n, Bytes: 1 << 30}
		for i := range n {
			if _, err := s.Deposit(t.Context(), m.deposit(fmt.Sprintf("again%d", i), 0, m.bob1, m.bob2), q); err != nil {
				t.Fatalf("deposit %d after all were acknowledged: %v (a message outlived its last copy)", i, err)
			}
		}
	})

	t.Run("DeletedUsersMailGone", func(t *testing.T) {
		s := open(t)
		m := newMailbox(t, s)
		m.mustDeposit(t, m.deposit("m1", 0, m.bob1, m.bob2), bigQuota)
		if err := s.DeleteUser(t.Context(), m.alice.ID); err != nil {
			t.Fatal(err)
		}
		checkMail(t, s, m.bob1, base)
	})
}
