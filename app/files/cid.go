package files

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"github.com/zeebo/blake3"
)

// CIDCodec is the multicodec of a content's CID: "raw" (0x55). The CID
// names the canonical manifest bytes exactly as they are; it is Parley's
// protocol, not an IPLD codec, that reads them as a manifest. dag-pb would
// promise an IPFS UnixFS layout we do not follow.
const CIDCodec = cid.Raw

// ErrCIDMismatch means bytes do not hash to the CID they were fetched for,
// or the CID is not one this package makes.
var ErrCIDMismatch = errors.New("manifest does not match its CID")

// CIDOf returns the CID of canonical manifest bytes: CIDv1, codec raw,
// multihash blake3 (0x1e) with a 32-byte digest.
func CIDOf(manifest []byte) cid.Cid {
	sum := blake3.Sum256(manifest)
	mh, err := multihash.Encode(sum[:], multihash.BLAKE3)
	if err != nil {
		panic(fmt.Sprintf("encode multihash: %v", err)) // cannot happen: code and length are valid
	}
	return cid.NewCidV1(CIDCodec, mh)
}

// CheckCID reports whether c has the form CIDOf makes.
func CheckCID(c cid.Cid) error {
	if !c.Defined() || c.Version() != 1 || c.Type() != CIDCodec {
		return fmt.Errorf("%w: %s is not a CIDv1 with codec raw", ErrCIDMismatch, c)
	}
	dec, err := multihash.Decode(c.Hash())
	if err != nil || dec.Code != multihash.BLAKE3 || dec.Length != HashSize {
		return fmt.Errorf("%w: %s is not a 32-byte blake3 multihash", ErrCIDMismatch, c)
	}
	return nil
}

// VerifyCID checks that manifest bytes are the ones c names.
func VerifyCID(c cid.Cid, manifest []byte) error {
	if err := CheckCID(c); err != nil {
		return err
	}
	if !bytes.Equal(CIDOf(manifest).Hash(), c.Hash()) {
		return fmt.Errorf("%w: %s", ErrCIDMismatch, c)
	}
	return nil
}

// hashChunk returns the BLAKE3-256 of a chunk.
func hashChunk(b []byte) [HashSize]byte { return blake3.Sum256(b) }

// ParseCID parses the text form of a content's CID (as shared in a link
// or typed by a user) and checks it has the form CIDOf makes.
func ParseCID(s string) (cid.Cid, error) {
	if len(s) > maxCIDText {
		return cid.Undef, fmt.Errorf("%w: %d characters, limit %d", ErrCIDMismatch, len(s), maxCIDText)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("parse CID: %w", err)
	}
	if err := CheckCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// maxCIDText bounds the text ParseCID reads: ours are 59 characters in
// base32, about 100 in the longest multibase.
const maxCIDText = 256
