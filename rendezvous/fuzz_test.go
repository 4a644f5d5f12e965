package rendezvous_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// fuzzAddrs are binary multiaddrs for seeds: /ip4/192.0.2.1/tcp/4001 and
// /ip4/192.0.2.1/udp/4001/quic-v1.
var fuzzAddrs = [][]byte{
	{0x04, 192, 0, 2, 1, 0x06, 0x0f, 0xa1},
	{0x04, 192, 0, 2, 1, 0x91, 0x02, 0x0f, 0xa1, 0xcd, 0x03},
}

// frames marshals msgs as consecutive wire frames.
func frames(f *testing.F, msgs ...proto.Message) []byte {
	f.Helper()
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := wire.Write(&buf, m, 0); err != nil {
			f.Fatalf("wire.Write: %v", err)
		}
	}
	return buf.Bytes()
}

// decodeAll reads frames from data until the first error, re-encoding each
// decoded message, and must not panic.
func decodeAll[M proto.Message](t *testing.T, data []byte, max int, newMsg func() M) {
	r := wire.NewReader(bytes.NewReader(data), max)
	for range 64 {
		m := newMsg()
		if err := r.Read(m); err != nil {
			return
		}
		if _, err := proto.Marshal(m); err != nil {
			t.Fatalf("re-marshal decoded message: %v", err)
		}
	}
}

// requestSeeds are one request of each kind.
var requestSeeds = []*pb.Request{
	{},
	{Body: &pb.Request_Register{Register: &pb.RegisterRequest{Username: "alice", Password: "password1"}}},
	{Body: &pb.Request_Enrol{Enrol: &pb.EnrolRequest{Username: "Alice", Password: "password1"}}},
	{Body: &pb.Request_Login{Login: &pb.LoginRequest{Addrs: fuzzAddrs}}},
	{Body: &pb.Request_RequestContact{RequestContact: &pb.ContactRequest{Username: "bob"}}},
	{Body: &pb.Request_ListSupernodes{ListSupernodes: &pb.ListSupernodesRequest{Max: 3}}},
	{Body: &pb.Request_AnnounceSupernode{AnnounceSupernode: &pb.AnnounceSupernodeRequest{
		Addrs: fuzzAddrs,
		Load:  &pb.SupernodeLoad{Reservations: 5, Circuits: 2, BytesRelayed: 1 << 40},
	}}},
	{Body: &pb.Request_UpdateAddrs{UpdateAddrs: &pb.UpdateAddrsRequest{Addrs: fuzzAddrs}}},
	{Body: &pb.Request_ChangePassword{ChangePassword: &pb.ChangePasswordRequest{OldPassword: "password1", NewPassword: "password2"}}},
	{Body: &pb.Request_DeleteAccount{DeleteAccount: &pb.DeleteAccountRequest{Password: "password1"}}},
	{Body: &pb.Request_RevokeDevice{RevokeDevice: &pb.RevokeDeviceRequest{PeerId: []byte("\x00\x24\x08\x01\x12\x20peer")}}},
	{Body: &pb.Request_AcceptContact{AcceptContact: &pb.ContactRequest{Username: "carol"}}},
	{Body: &pb.Request_Block{Block: &pb.ContactRequest{Username: "mallory"}}},
	{Body: &pb.Request_Ping{Ping: &pb.PingRequest{}}},
	{Body: &pb.Request_ListContacts{ListContacts: &pb.ListContactsRequest{}}},
	{Body: &pb.Request_PublishDeviceKey{PublishDeviceKey: &pb.PublishDeviceKeyRequest{DeviceKey: []byte("\x0a\x04info\x12\x03sig")}}},
	{Body: &pb.Request_DeviceKeys{DeviceKeys: &pb.DeviceKeysRequest{Username: "bob"}}},
	{Body: &pb.Request_Deposit{Deposit: &pb.DepositRequest{To: "bob", MessageId: "m1", Envelopes: []*pb.MailEnvelope{
		{PeerId: []byte("\x00\x24\x08\x01\x12\x20peer"), Ciphertext: []byte("sealed")},
	}}}},
	{Body: &pb.Request_FetchMail{FetchMail: &pb.FetchMailRequest{Max: 10}}},
	{Body: &pb.Request_AckMail{AckMail: &pb.AckMailRequest{Ids: []uint64{1, 2, 1 << 63}}}},
}

func FuzzDecodeRequestNoPanic(f *testing.F) {
	reqs := requestSeeds
	for _, r := range reqs {
		f.Add(frames(f, r))
	}
	// A session: login, then address updates on the same stream.
	f.Add(frames(f, reqs[3], reqs[7], reqs[13], reqs[7]))
	f.Add([]byte{})
	f.Add([]byte{0x03, 0x0a, 0x05, 0x61})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})

	f.Fuzz(func(t *testing.T, data []byte) {
		decodeAll(t, data, rendezvous.MaxDepositSize, func() *pb.Request { return new(pb.Request) })
	})
}

func FuzzDecodeResponseNoPanic(f *testing.F) {
	online := &pb.Presence{Username: "bob", Online: true, PeerId: []byte("\x00\x24\x08\x01\x12\x20peer"), Addrs: fuzzAddrs}
	offline := &pb.Presence{Username: "carol", LastSeenUnixMs: 1700000000000}
	resps := []*pb.Response{
		{},
		{Status: pb.Status_STATUS_BAD_REQUEST, Message: "bad request: a username has 3 to 32 letters"},
		{Status: pb.Status_STATUS_RATE_LIMITED, Message: "too many attempts", RetryAfterMs: 30000},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Account{Account: &pb.AccountResponse{Username: "alice"}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Login{Login: &pb.LoginResponse{Username: "alice", Contacts: []*pb.Presence{online, offline}}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Contact{Contact: &pb.ContactResponse{Accepted: true}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Supernodes{Supernodes: &pb.SupernodeList{Supernodes: []*pb.PeerInfo{{PeerId: []byte("id"), Addrs: fuzzAddrs}}}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Presence{Presence: online}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Announce{Announce: &pb.AnnounceSupernodeResponse{TtlMs: 60000}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_ContactEvent{ContactEvent: &pb.ContactEvent{Kind: pb.ContactEvent_KIND_REQUESTED, Username: "dave"}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Certificate{Certificate: []byte("\x0a\x03abc\x12\x01x")}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_GoAway{GoAway: &pb.GoAway{RetryAfterMs: 1500}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Contacts{Contacts: &pb.ContactList{Accepted: []*pb.Presence{online}, Incoming: []string{"erin"}, Blocked: []string{"mallory"}}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Devices{Devices: &pb.DeviceList{Devices: []*pb.DeviceInfo{{PeerId: []byte("id"), EnrolledUnixMs: 1, Online: true}}}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_DeviceKeys{DeviceKeys: &pb.DeviceKeyList{Username: "bob", Keys: []*pb.DeviceKey{{PeerId: []byte("id"), DeviceKey: []byte("key")}}}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Deposit{Deposit: &pb.DepositResponse{Id: 7, Duplicate: true}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_Mail{Mail: &pb.MailList{More: true, Mail: []*pb.Mail{{Id: 7, Sender: "alice", SenderPeerId: []byte("id"), MessageId: "m1", DepositedUnixMs: 1, Ciphertext: []byte("sealed")}}}}},
		{Status: pb.Status_STATUS_OK, Body: &pb.Response_AckMail{AckMail: &pb.AckMailResponse{Deleted: 3}}},
		{Status: pb.Status_STATUS_RESOURCE_EXHAUSTED, Code: "mailbox_full", Message: "bob's mailbox is full"},
	}
	for _, r := range resps {
		f.Add(frames(f, r))
	}
	// A session: the login answer, then pushes.
	f.Add(frames(f, resps[4], resps[7], &pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_Presence{Presence: offline}}))
	f.Add([]byte{})
	f.Add([]byte{0x03, 0x0a, 0x05, 0x61})

	f.Fuzz(func(t *testing.T, data []byte) {
		decodeAll(t, data, rendezvous.MaxResponseSize, func() *pb.Response { return new(pb.Response) })
	})
}
