// Package offers is Parley's offer protocol, /parley/offer/1.0.0, and the
// list of offers a device made and received: "send this file or folder
// to my contact bob", which bob accepts or declines.
//
// The offer only names the content (its CID, a display name, the size
// and the number of files); the content itself travels over
// /parley/files/1.0.0 (package files) once the recipient accepts, served
// by the offering device to the recipient's devices only (package xfer).
//
// # Protocol
//
// The opener of a stream writes one Request frame (uvarint length +
// protobuf, at most MaxFrameSize bytes) and closes its write side; the
// responder answers with one Ack frame and closes. The whole exchange has
// a deadline (ExchangeTimeout). A Request carries the sender's username
// and either
//
//   - an Offer (sender → recipient): id (32 lowercase hex digits), CID,
//     name, size, number of files, when it was sent; or
//   - a Reply (recipient → the device that made the offer): the offer's
//     id and whether it was accepted.
//
// The responder authenticates like chat: the stream's peer must be an
// online device of the contact Request.sender names. An unknown peer is
// answered STATUS_TRY_LATER (its view of presence may lag; nothing is
// stored); a sender name that does not match the device, a malformed id
// or CID, a name that is not one safe file name (see CheckName), a size
// or file count out of range, or a reply to an offer this device did not
// make to that contact are answered STATUS_REJECTED and never stored. An
// offer id already received from the same contact is acknowledged again
// but stored once, so a sender may retry freely.
// A contact with MaxPendingPerContact offers unanswered is asked to try
// later, so a contact cannot fill the list.
//
// # Delivery
//
// Offers and replies are stored before they touch the network and
// delivered at once if the other side is online. What could not be
// delivered is retried by the service's goroutine when FlushSoon asks
// (the client engine calls it at login and when a contact comes online)
// and every RetryInterval, also after a restart. A reply goes back to
// the device the offer came from, which holds the content. When the
// recipient declines (or their device refuses the offer), Config.OnClosed
// tells the sender's engine, which stops serving the content to them
// before the change is reported.
//
// # Store
//
// The list is one JSON file (mode 0600) written atomically on every
// change.
package offers

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/offers")
