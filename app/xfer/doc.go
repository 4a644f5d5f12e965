// Package xfer is the client engine's transfer manager: it publishes
// files and folders (shared in place by package files and announced in
// the DHT), serves them on /parley/files/1.0.0, and runs downloads named
// by links (parley://<cid>?name=&size=&from=), with progress, pause,
// resume, cancel and resumption after a restart.
//
// # Admission
//
// Published content is served to members: a requester presents its
// membership certificate on the file stream (files.Conn.Present), the
// manager checks it with Config.Certify (the engine verifies it against
// the rendezvous server's key and that it was issued to the requesting
// peer), and content in the published list is served while the
// certificate is valid. A peer that only learned a CID (from a link, or
// from provider records in the DHT) and holds no certificate is refused.
//
// Content shared with one user (Share, for an offer: see package
// app/offers) is indexed in place the same way but never announced, and
// served only to requesters whose certificate names that user: any of
// their devices, not other members, not the sharer's other devices.
// Unshare withdraws it; content published and shared stays served until
// it is neither.
//
// # State
//
// The manager keeps its published and shared lists and its transfers in
// one JSON file
// (written atomically on every change of state, not on progress), and the
// share index in a SQLite file. After a restart, content is announced
// again and downloads that were finding providers or running start again
// from their verified chunks; paused ones stay paused.
package xfer

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/xfer")
