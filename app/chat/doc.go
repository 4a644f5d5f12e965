// Package chat is Parley's peer-to-peer chat over /parley/chat/1.0.0.
//
// Protocol: the sender opens a stream to the recipient's device, writes one
// Message frame (uvarint length + protobuf, at most MaxFrameSize bytes) and
// closes its write side; the recipient answers with one Ack frame and
// closes. The whole exchange has a deadline (ExchangeTimeout).
//
// The recipient checks that the stream's authenticated peer is the device
// its contact list has for Message.sender. It answers STATUS_DELIVERED once
// the message is stored; STATUS_REJECTED (with the reason, nothing stored)
// for a forged sender, an empty id or an invalid body; and STATUS_TRY_LATER
// when it cannot take the message now (the sender is not, or not yet, in
// its contact list, or storage failed). A message id already in the history
// is acknowledged again but not stored twice, so a sender may retry freely:
// at-least-once on the wire, exactly once on screen.
//
// Outbox: Send stores an outgoing message as queued before it touches the
// network, then delivers the contact's queue oldest first, stopping at the
// first message that cannot be delivered now. Whatever is left is sent by
// Flush, which the client engine calls when the contact comes online and
// periodically, also after a restart.
//
// Streams may run over relayed (limited) connections: chat needs only a
// few kilobytes, and a supernode's default limits do not cut it off.
package chat

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/chat")
