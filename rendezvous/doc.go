// Package rendezvous is the protocol of Parley's central server:
// /parley/rendezvous/1.0.0 with its wire limits, timeouts, username and
// password rules, statuses and the errors they stand for. It holds no
// server code, so clients link only what they speak.
//
// The protocol has three homes: this package and package pb (messages),
// package client (the client side), and package server (the service:
// accounts, devices, membership certificates, contacts, presence and the
// supernode directory), with its storage in store/sqlite and
// store/postgres. Package cert verifies the server's certificates offline.
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
//     again after retry_after_ms, spread over the server's GoAwaySpread)
//     when it shuts down, or an error status when the device is revoked
//     (STATUS_PERMISSION_DENIED) or the account deleted.
//
// # Supernode directory
//
// A supernode candidate sends announce_supernode every third of the
// server's SupernodeTTL with its addresses and load (reservations,
// circuits, bytes relayed, CPU use, capacity, whether it is a dedicated
// relay); the answer says whether it is active. With leaving set it is
// dropped at once. Who may announce: any peer in an open directory;
// otherwise the trusted relays and enrolled, unrevoked devices
// (PERMISSION_DENIED, ErrNotTrusted, for others). list_supernodes takes at
// most MaxRTTHints round-trip measurements and returns at most
// MaxSupernodes supernodes.
//
// How the directory elects its active set and orders an answer is the
// server's business; see package server.
//
// # Statuses and codes
//
// Every response carries a Status and a message safe to show a user:
// OK, BAD_REQUEST (do not retry unchanged), UNAUTHENTICATED (wrong
// username or password, device not enrolled, account deleted),
// ALREADY_EXISTS (username taken, device taken), NOT_FOUND, RATE_LIMITED
// (retry after retry_after_ms), PERMISSION_DENIED (device revoked, not a
// trusted supernode), UNAVAILABLE (shutting down; retry after
// retry_after_ms), INTERNAL.
//
// An error response also carries code: the stable, machine-readable name
// of the error ("invalid_request", "bad_credentials",
// "device_not_enrolled", "account_deleted", "session_required",
// "username_taken", "device_taken", "not_found", "rate_limited",
// "device_revoked", "not_trusted", "server_unavailable",
// "server_internal"), because a status alone may stand for several
// errors. The client daemon's local API names these errors with the same
// codes. Clients decide by code, never by message. A response without a
// code (from an older server), or with a code the client does not know or
// that does not belong to its status, stands for the status's default
// error: the first of its list above.
//
// One table (Errors) holds, per sentinel error of this package, its
// status, its code and the HTTP status of the client daemon's local API.
// The server answers with ErrorResponse; the client turns the response
// into a *StatusError with ResponseError, which unwraps to the sentinel,
// so callers test with errors.Is.
//
// Answers do not reveal which usernames exist beyond registration itself:
// a wrong username and a wrong password get the same answer, in the same
// time, and a contact request to an unknown user, or to a user who blocked
// the caller, gets the same answer as any other request.
//
// # Abuse limits
//
// The server limits logins, everything that checks a password, contact
// requests and supernode announcements per device or account and per
// source address. A refused request gets STATUS_RATE_LIMITED with
// retry_after_ms: the client should wait that long before it retries.
package rendezvous
