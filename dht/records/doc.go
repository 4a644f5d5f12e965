// Package records encodes, signs and validates the records Parley stores in
// its DHT.
//
// # Keys
//
// A record key is "/<namespace>/<peer ID bytes>" (the binary peer ID, as
// go-libp2p-record and kad-dht expect). Two namespaces exist:
//
//   - /addr/<device>: a device's address record: its current direct and
//     circuit addresses, so that a contact can be reached even while the
//     rendezvous server is down.
//   - /supernode/<supernode>: a supernode's announcement: it relays for
//     Parley members on these addresses until the record expires.
//
// In text (the parley-dht CLI) the peer ID is written in its usual base58
// or CID form: /addr/12D3KooW…; see KeyString and ParseKeyString.
//
// # Encoding
//
// A value is a protobuf SignedRecord{body, signature} (dht/pb) whose body is
// a serialised RecordBody{kind, peer_id, seq, addrs, issued_unix_ms,
// expires_unix_ms}. The signature is made with the private key of peer_id
// over "parley/dht-record/v1\0<namespace>\0" followed by the body bytes
// exactly as sent; the namespace in the domain keeps a record of one kind
// from ever verifying as another. The public key is the one embedded in
// the peer ID, so only identity-hashed peer IDs can sign records: Ed25519
// (every Parley identity) and secp256k1. Only one encoding of a record is
// accepted: the envelope and the body must each be the deterministic proto3
// encoding of their fields (no unknown fields, no padding), so a record has
// a single byte form.
//
// # Validation
//
// Validate (the DHT's validator for both namespaces) refuses, each failure
// wrapping exactly one of the errors below:
//
//   - values over MaxSize bytes (ErrTooLarge) before decoding them;
//   - anything that does not decode, is not canonical, has an unknown kind,
//     no addresses or more than MaxAddrs, an address over MaxAddrLen bytes
//     or that is not a multiaddr, an expiry not after its issue time, or a
//     lifetime over MaxLifetime (ErrMalformed);
//   - a key that is not /addr/<peer> or /supernode/<peer> (ErrBadKey), or
//     whose namespace differs from the record's kind (ErrWrongKind);
//   - a record whose peer is not the peer its key names (ErrWrongPeer);
//   - a signature that does not verify with the peer's key (ErrBadSignature):
//     a forged record;
//   - a record whose expiry is more than MaxSkew in the past (ErrExpired),
//     or issued more than MaxSkew in the future (ErrNotYetValid).
//
// Replays are refused by Select: of two valid records under one key the one
// with the higher sequence number wins (then the later expiry, then the
// larger encoding, so every node picks the same one). A DHT server keeps
// the record it has when a PUT brings a lower sequence number, and a reader
// that hears several answers keeps the best one and corrects the peers that
// sent older ones. Sequence numbers must therefore only grow, also across
// restarts (package dht offers persistent sequence sources).
package records
