package server_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous/pb"
)

// The seeds of FuzzServerAnswersEveryRequest: the same requests as the
// decoder fuzzers' in package rendezvous, which cannot share test files.

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
