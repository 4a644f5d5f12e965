package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"

	"github.com/parleynet/parley/rendezvous/server"
)

// Mailbox benchmark sizes: small, so that a run with -benchtime=1x is
// quick. Each iteration handles benchBatch messages of two copies (a
// recipient with two devices) of benchCiphertext bytes each: a short chat
// message sealed (about 1 KiB).
const (
	benchBatch      = 200
	benchCiphertext = 1 << 10
	benchWriters    = 8
)

// BenchMailbox measures the mailbox of stores from newStore: messages
// deposited per second, by one writer and by benchWriters writers to
// different recipients, and messages fetched and acknowledged per second
// (both devices of the recipient), each reported as msg/s.
func BenchMailbox(b *testing.B, newStore func(b *testing.B) server.Store) {
	open := func(b *testing.B) server.Store {
		b.Helper()
		s := newStore(b)
		b.Cleanup(func() { _ = s.Close() })
		return s
	}
	b.Run("Deposit", func(b *testing.B) { benchDeposit(b, open(b), 1) })
	b.Run(fmt.Sprintf("Deposit/writers=%d", benchWriters), func(b *testing.B) { benchDeposit(b, open(b), benchWriters) })
	b.Run("FetchAck", func(b *testing.B) { benchFetchAck(b, open(b)) })
}

// benchUser is a recipient with two devices that published keys, and a
// sender who is its contact.
type benchUser struct {
	recipient, sender server.User
	senderDev         peer.ID
	devs              []peer.ID
}

func newBenchUser(b *testing.B, s server.Store, name string) benchUser {
	b.Helper()
	ctx := b.Context()
	mk := func(name string) (server.User, peer.ID) {
		dev := test.RandPeerIDFatal(b)
		u, err := s.Register(ctx, name, []byte("hash"), dev)
		if err != nil {
			b.Fatalf("Register(%s): %v", name, err)
		}
		return u, dev
	}
	var u benchUser
	var dev1 peer.ID
	u.recipient, dev1 = mk("r-" + name)
	u.sender, u.senderDev = mk("s-" + name)
	dev2 := test.RandPeerIDFatal(b)
	if err := s.EnrolDevice(ctx, u.recipient.ID, dev2); err != nil {
		b.Fatal(err)
	}
	u.devs = []peer.ID{dev1, dev2}
	for _, d := range u.devs {
		if err := s.PutDeviceKey(ctx, u.recipient.ID, d, make([]byte, 100), base); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.RequestContact(ctx, u.sender.ID, u.recipient.ID); err != nil {
		b.Fatal(err)
	}
	if err := s.AcceptContact(ctx, u.recipient.ID, u.sender.ID); err != nil {
		b.Fatal(err)
	}
	return u
}

var benchQuota = server.MailQuota{Messages: 1 << 30, Bytes: 1 << 50}

// depositN deposits n messages from u's sender, numbered from first.
func (u benchUser) depositN(b *testing.B, s server.Store, first, n int) {
	ct := make([]byte, benchCiphertext)
	for i := range n {
		d := server.Deposit{
			Recipient: u.recipient.ID, Sender: u.sender.ID, SenderDevice: u.senderDev,
			MessageID: fmt.Sprintf("m%d", first+i), At: time.Now(), Expires: time.Now().Add(time.Hour),
		}
		for _, dev := range u.devs {
			d.Copies = append(d.Copies, server.MailCopy{Device: dev, Ciphertext: ct})
		}
		if _, err := s.Deposit(b.Context(), d, benchQuota); err != nil {
			b.Errorf("Deposit: %v", err)
			return
		}
	}
}

func benchDeposit(b *testing.B, s server.Store, writers int) {
	users := make([]benchUser, writers)
	for w := range users {
		users[w] = newBenchUser(b, s, fmt.Sprintf("w%d", w))
	}
	per := benchBatch / writers
	start := time.Now()
	n := 0
	for b.Loop() {
		var wg sync.WaitGroup
		for w := range users {
			wg.Go(func() { users[w].depositN(b, s, n*per, per) })
		}
		wg.Wait()
		n++
	}
	b.ReportMetric(float64(n*per*writers)/time.Since(start).Seconds(), "msg/s")
}

func benchFetchAck(b *testing.B, s server.Store) {
	u := newBenchUser(b, s, "f")
	ctx := b.Context()
	var elapsed time.Duration
	msgs := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		u.depositN(b, s, i*benchBatch, benchBatch)
		b.StartTimer()
		start := time.Now()
		for _, dev := range u.devs {
			for {
				mail, err := s.FetchMail(ctx, dev, time.Now(), 64)
				if err != nil {
					b.Fatalf("FetchMail: %v", err)
				}
				if len(mail) == 0 {
					break
				}
				ids := make([]int64, len(mail))
				for j, m := range mail {
					ids[j] = m.ID
				}
				if _, err := s.AckMail(ctx, dev, ids); err != nil {
					b.Fatalf("AckMail: %v", err)
				}
			}
		}
		elapsed += time.Since(start)
		msgs += benchBatch
	}
	// A message counts once, fetched and acknowledged by both devices.
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "msg/s")
}
