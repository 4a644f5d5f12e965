// Package rendezvous is Parley's central server: accounts, devices,
// membership certificates, contacts, presence and the supernode directory.
// Package client is its client side; package cert verifies its
// certificates offline; packages store/sqlite and store/postgres keep its
// state.
//
// # Protocol
//
// /parley/rendezvous/1.0.0 runs on libp2p streams. Every frame is a
// length-delimited protobuf (package pb): a Request from the client, a
// Response from the server. Requests are at most MaxRequestSize bytes,
// responses MaxResponseSize; a larger or malformed frame is answered with
// STATUS_BAD_REQUEST and the stream is closed. Each exchange has
// RequestTimeout.
//
// The secure channel authenticates the caller's PeerID: that is the device.
// Only register, enrol, change-password and delete-account carry a password;
// every other request is authorised by the device alone.
//
//   - One request, one response, one stream: register (creates the account
//     and enrols the calling device), enrol (adds the calling device; needs
//     the password), change_password, delete_account, list_devices,
//     revoke_device, request_contact, accept_contact, decline_contact,
//     remove_contact, block, unblock, list_contacts, server_info,
//     list_supernodes, announce_supernode.
//   - A session: the client sends login on a new stream and keeps the
//     stream open. The server answers with a LoginResponse (a presence
//     snapshot of every accepted contact, pending contact requests, a
//     membership certificate, the keepalive interval and the server's
//     certificate key), then pushes Presence, ContactEvent and renewed
//     certificates (at half their lifetime) as they happen. The client sends
//     ping every keepalive (answered with pong) and update_addrs when its
//     addresses change. A session silent for three keepalives is closed and
//     its device shown offline; the client likewise gives up on a silent
//     server. The server ends a session with a final frame: go_away (log in
//     again after retry_after_ms, spread over GoAwaySpread) when it shuts
//     down, or an error status when the device is revoked
//     (STATUS_PERMISSION_DENIED) or the account deleted.
//
// # Supernode directory
//
// A supernode candidate sends announce_supernode every third of
// SupernodeTTL with its addresses and load (reservations, circuits, bytes
// relayed, CPU use, capacity, whether it is a dedicated relay); the answer
// says whether it is active. With leaving set it is dropped at once. Who
// may announce: any peer in an open directory (Config.TrustedSupernodes
// nil); otherwise the trusted relays and enrolled, unrevoked devices
// (PERMISSION_DENIED, ErrNotTrusted, for others).
//
// The directory elects the active set (ElectionConfig): at least MinActive
// supernodes, grown as soon as demand (reported reservations, slots handed
// out and not yet reported, and for a TTL the reservations of supernodes
// that failed or left) exceeds TargetUtilisation of the active capacity,
// dedicated relays first; shrunk one supernode per MinTenure, only when
// demand would stay under DemoteBelow of what remains. list_supernodes
// returns active supernodes, least utilised first (in steps of 10%), then
// by the round trips the caller measured (at most MaxRTTHints, sent with
// the request), then least loaded, ties spread per client. Supernodes at
// MaxUtilisation of their slots or CPU come last, and standbys are
// promoted rather than such supernodes handed out. For a logged-in
// caller the first two supernodes count as loaded by one slot each until
// they report it.
//
// # Statuses
//
// Every response carries a Status and a message safe to show a user:
// OK, BAD_REQUEST (do not retry unchanged), UNAUTHENTICATED (wrong
// username or password, device not enrolled, account deleted),
// ALREADY_EXISTS, NOT_FOUND, RATE_LIMITED (retry after retry_after_ms),
// PERMISSION_DENIED (device revoked), UNAVAILABLE (shutting down), INTERNAL.
// The client turns them into *StatusError values that unwrap to this
// package's sentinels, so callers test them with errors.Is.
//
// Answers do not reveal which usernames exist beyond registration itself:
// a wrong username and a wrong password get the same answer, in the same
// time, and a contact request to an unknown user, or to a user who blocked
// the caller, gets the same answer as any other request.
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
// # Abuse limits
//
// Token buckets per device or account and per source address (Limits):
// logins, everything that checks a password, and contact requests. They
// live in each replica's memory.
package rendezvous
