// Package chat is Parley's peer-to-peer chat over /parley/chat/2.0.0.
//
// Protocol: the sender keeps one stream per conversation (contact) to the
// recipient's device and writes Message frames on it (uvarint length +
// protobuf, at most MaxFrameSize bytes), pipelined: up to Window messages
// without their acks. The recipient reads what arrived together (up to
// Window frames), stores the batch in one SQLite transaction, and answers
// one Ack frame per message, in the order the messages came. The sender
// settles each message from its ack, so states change one by one. A
// sender closes a stream that stayed idle for IdleTimeout; a recipient
// gives up on one after RecvIdleTimeout.
//
// The recipient checks that the stream's authenticated peer is the device
// its contact list has for Message.sender. It answers STATUS_DELIVERED once
// the message is stored; STATUS_REJECTED (with the reason, nothing stored)
// for a forged sender, an empty id or an invalid body; and STATUS_TRY_LATER
// when it cannot take the message now (the sender is not, or not yet, in
// its contact list, or storage failed). After a TRY_LATER it answers
// TRY_LATER to the rest of the stream without storing it, so nothing is
// stored ahead of a message that has to come again; the sender stops
// there and the rest stays queued. A message id already in the history
// is acknowledged again but not stored twice, so a sender may retry freely:
// at-least-once on the wire, exactly once in the history.
//
// /parley/chat/1.0.0 (one stream per message, of the previous release) is
// still answered by the same handler: such a stream is a stream of one
// message. The sender speaks 2.0.0 only: a device of the previous release
// gets messages once it is updated (they stay queued until then).
//
// Paths: a message's path label ("direct", "holepunched", "relayed via
// <supernode>") is that of the connection its stream ran on (the sender's
// label of the stream it was acknowledged on; the recipient's of the
// stream it came on), not a later look at the peer's connections.
//
// Dead paths: while messages are outstanding, an ack must come within
// AckTimeout (and a stream must open within it on a connection that
// stands). Otherwise the connection counts as dead: it is closed (the
// app's path watcher shows the change), a direct or hole-punched peer with
// a circuit address is dialled through relays only for DirectRetryAfter
// (node.AvoidDirect), and the unacknowledged messages go again at once on
// a new stream, through a supernode, with RedialTimeout for the dial. A
// message sent over a path that died is so delivered relayed, or back
// queued, within AckTimeout + RedialTimeout (4.5 s), not after the
// transport's own idle timeout (30 s). At most MaxInflightBytes are
// unacknowledged, so that a slow relay still acks in time.
//
// Outbox: Send hands the message to the conversation's goroutine, which
// stores it as queued (new messages that came together in one
// transaction) before it touches the network, then delivers the contact's
// queue oldest first. When a message cannot be delivered now (the
// contact is offline or unreachable, the stream broke maxAttempts times
// without an ack, or TRY_LATER) it and every later one stay queued, and
// Send returns them Queued. Whatever is left is sent by Flush, which the
// client engine calls when the contact comes online and periodically,
// also after a restart. Close waits for every goroutine of the service.
//
// Streams may run over relayed (limited) connections: chat needs only a
// few kilobytes a message, and a supernode's default limits do not cut
// it off.
package chat

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/chat")
