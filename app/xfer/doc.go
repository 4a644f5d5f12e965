// Package xfer is the client engine's transfer manager: it publishes
// files and folders (shared in place by package files and announced in
// the DHT), serves them on /parley/files/1.0.0, and runs downloads named
// by links (parley://<cid>?name=&size=&from=), with progress, pause,
// resume, cancel and resumption after a restart.
//
// # Admission
//
// Published content is served to any peer that asks for its CID: the
// Admitter admits every peer to content in the published list, and
// nothing else (the index holds nothing else today). The risk: anyone who
// learns a CID (from a link, or by watching provider records in the DHT)
// and can dial this device can fetch the content, member or not. The
// intended rule is "holders of a valid membership certificate", which
// needs the requester to present its certificate on /parley/auth/1.0.0 to
// the provider (as supernodes ask), not only to supernodes; see Config.Admit.
//
// # State
//
// The manager keeps its published list and its transfers in one JSON file
// (written atomically on every change of state, not on progress), and the
// share index in a SQLite file. After a restart, content is announced
// again and downloads that were finding providers or running start again
// from their verified chunks; paused ones stay paused.
package xfer

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/xfer")
