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
//     list_supernodes, announce_supernode, and the mailbox's
//     publish_device_key, device_keys, deposit, fetch_mail and ack_mail.
//   - A session: the client sends login on a new stream and keeps the
//     stream open. The server answers with a LoginResponse (a presence
//     snapshot of every accepted contact, pending contact requests, a
//     membership certificate, the keepalive interval, the server's
//     certificate key and how much mail waits for the device), then pushes Presence, ContactEvent and renewed
//     certificates (at half their lifetime) as they happen. The client sends
//     ping every keepalive (answered with pong) and update_addrs when its
//     addresses change. A session silent for three keepalives is closed and
//     its device shown offline; the client likewise gives up on a silent
//     server. The server ends a session with a final frame: go_away (log in
//     again after retry_after_ms, spread over the server's GoAwaySpread)
//     when it shuts down, or an error status when the device is revoked
//     (STATUS_PERMISSION_DENIED) or the account deleted.
//
// # Offline mailbox
//
// When none of a contact's devices can be reached, a message waits for
// them on the server, end-to-end encrypted (package internal/seal does
// the cryptography; the server sees ciphertext and routing facts only:
// sender, sender device, recipient, message ID, times and sizes).
//
//   - publish_device_key: a device publishes its X25519 mailbox key,
//     signed by its identity key; the server checks the signature against
//     the calling device and keeps the key with the device. A device
//     publishes it at every login (it replaces the previous one).
//     Revoking a device drops its key and its pending mail.
//   - device_keys{username}: the keys of the user's active devices; only
//     for the user and the user's accepted contacts (anyone else, and an
//     unknown user, gets PERMISSION_DENIED, contact_required). Clients
//     check each key's signature themselves.
//   - deposit{to, message_id, envelopes}: the message sealed once per
//     device, exactly one envelope for each active device of `to` with a
//     key (else BAD_REQUEST, device_keys_changed: fetch the keys and seal
//     again). Only accepted contacts may deposit (contact_required). At
//     most MaxMailDevices envelopes of MaxMailCiphertext bytes; a deposit
//     is the one request that may exceed MaxRequestSize, up to
//     MaxDepositSize. Depositing the same message ID to the same user
//     again is a no-op (duplicate = true) while the message is stored.
//     Each user's mailbox has a quota of messages and bytes (the server's
//     MailboxConfig, by default 10,000 messages and 64 MiB): over it, the
//     answer is RESOURCE_EXHAUSTED, mailbox_full, with a message naming
//     the user; the sender keeps the message queued and retries later.
//   - fetch_mail{max}: the calling device's pending copies, oldest first,
//     at most max (or the server's default, at most MaxFetchMail) and as
//     many as fit in MaxResponseSize; more = true when others wait. Each
//     carries the server's id, the sender's username and device as the
//     server authenticated them at deposit, the message ID and the
//     deposit time.
//   - ack_mail{ids}: deletes the calling device's copies (at most
//     MaxAckMail ids). A message is deleted once every device it was
//     sealed to has acknowledged it (or was revoked), and after 30 days
//     (the server's TTL) in any case; expired mail is never delivered.
//
// A device that published a key and is logged in is pushed mail_waiting
// when mail is deposited for it. A device fetches its mail after login
// and when pushed, opens and stores each message,
// and only then acknowledges it; a message that does not open is
// acknowledged too (it never will). Replays are dropped by message ID on
// the device.
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
// trusted supernode, not a contact), UNAVAILABLE (shutting down; retry
// after retry_after_ms), RESOURCE_EXHAUSTED (a mailbox is full; retry
// later), INTERNAL.
//
// An error response also carries code: the stable, machine-readable name
// of the error ("invalid_request", "bad_credentials",
// "device_not_enrolled", "account_deleted", "session_required",
// "username_taken", "device_taken", "not_found", "rate_limited",
// "device_revoked", "not_trusted", "contact_required",
// "device_keys_changed", "mailbox_full", "server_unavailable",
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
// requests, supernode announcements and mailbox deposits per device or
// account and per source address. A refused request gets STATUS_RATE_LIMITED with
// retry_after_ms: the client should wait that long before it retries.
package rendezvous
