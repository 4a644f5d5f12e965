// Package chat is Parley's peer-to-peer chat over /parley/chat/1.0.0.
//
// Protocol: the sender opens a stream to the recipient's device, writes one
// Message frame (uvarint length + protobuf, at most MaxFrameSize bytes) and
// closes its write side; the recipient answers with one Ack frame and
// closes. The whole exchange has a deadline (ExchangeTimeout).
//
// The recipient checks that the stream's authenticated peer is the device
// its contact list has for Message.sender; a message from anyone else, or
// with an empty id or an oversized body, is answered STATUS_REJECTED with
// the reason and is not stored. A message id already in the history is
// acknowledged again but not stored twice, so a sender may retry freely:
// at-least-once on the wire, exactly once on screen.
//
// Streams may run over relayed (limited) connections: chat needs only a
// few kilobytes, and a supernode's default limits do not cut it off.
package chat

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/chat")
