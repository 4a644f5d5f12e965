// Package server is the rendezvous service: it serves
// /parley/rendezvous/1.0.0 (described in package rendezvous) on a libp2p
// host. It keeps accounts (argon2id password hashes), enrolled devices,
// membership certificates, contacts, presence sessions and the supernode
// directory, on a Store (packages store/sqlite and store/postgres; the
// suite in package storetest runs against both).
//
// Configure it with a Config: every zero field takes its DefaultConfig
// value; LocalConfig is the preset for tests and the local testnet.
//
// # Supernode directory
//
// The directory elects the active set (ElectionConfig): at least MinActive
// supernodes, grown as soon as demand (reported reservations, slots handed
// out and not yet reported, and for a TTL the reservations of supernodes
// that failed or left) exceeds TargetUtilisation of the active capacity,
// dedicated relays first; shrunk one supernode per MinTenure, only when
// demand would stay under DemoteBelow of what remains. list_supernodes
// returns active supernodes, least utilised first (in steps of 10%), then
// by the round trips the caller measured (at most rendezvous.MaxRTTHints,
// sent with the request), then least loaded, ties spread per client.
// Supernodes at MaxUtilisation of their slots or CPU come last, and
// standbys are promoted rather than such supernodes handed out. For a logged-in
// caller the first two supernodes count as loaded by one slot each until
// they report it.
//
// Only a candidate that works is seated. When a candidate first announces
// itself, and when its addresses change, the server checks it the way a
// client would use it (Config.SupernodeCheck): from a host of its own it
// dials the announced addresses, presents a certificate it issued to that
// host, and takes a circuit reservation (which ends when it disconnects).
// The announcement is answered with the outcome when the check takes under
// 2 s; a check gives up after 10 s. A candidate that fails stays a standby,
// never handed out, with the reason in the log, in Supernodes() and in the
// supernode_checks_total metric, and is checked again at a heartbeat a
// minute later. A seated supernode whose new addresses fail is demoted.
//
// # Replicas
//
// Several servers may share one PostgreSQL database. Live sessions are
// stored (SessionRecord) so that every replica sees every online device;
// each change is published on the store's event bus (LISTEN/NOTIFY) and
// each replica pushes it to its own clients. Replicas heartbeat; the
// sessions of a replica silent for ReplicaTimeout are retired by the others
// and its users shown offline.
//
// # Offline mailbox
//
// The mailbox (MailboxConfig) keeps sealed messages for devices that were
// offline: in the store, the device keys (device_keys), one row per
// message with its routing facts (mail) and one ciphertext per device
// that has yet to acknowledge it (mail_copies). Acknowledging deletes the
// device's copy, and the message with its last copy; revoking a device
// deletes its key and copies. Every replica sweeps expired messages every
// SweepEvery (deleting is idempotent, so replicas sharing a database do
// not coordinate), and none is delivered once expired. The quota counts
// a recipient's unexpired messages and their bytes as deposited, and is
// checked in the deposit's transaction (PostgreSQL: under a lock of the
// recipient's row, so concurrent deposits cannot both take the last
// place).
//
// # Abuse limits
//
// Token buckets per device or account and per source address (Limits):
// logins, everything that checks a password, contact requests,
// supernode announcements and mailbox deposits. They live in each
// replica's memory.
package server
