package files

import "time"

// ChunkSize is the fixed chunk length: every chunk of a file but its last
// is this long. 1 MiB keeps the manifest small (32 bytes of hash per MiB,
// so 8 KiB for a 256 MiB file and 16 MiB at MaxChunks), makes one chunk a
// large, cheap unit for disk reads and network frames, and is still fine
// grained enough to spread a file over several providers and to lose
// little when a provider lies or a transfer stops. Syncthing's smallest
// block (128 KiB) costs 8x the hashes for no gain at these sizes.
const ChunkSize = 1 << 20

// HashSize is the length of a chunk hash (BLAKE3-256).
const HashSize = 32

// Limits on manifests. A manifest over any of them is refused by Decode,
// and Build refuses to make one.
const (
	MaxManifestSize = 32 << 20 // bytes of encoded manifest
	MaxEntries      = 100_000  // files in one manifest
	MaxChunks       = 1 << 19  // chunks in one manifest (512 GiB of content)
	MaxPathLen      = 1024     // bytes in an entry path
	MaxNameLen      = 255      // bytes in one path component
	MaxDepth        = 32       // components in an entry path
)

// Limits of the protocol.
const (
	// MaxRequestSize bounds one Request frame: room for a membership
	// certificate (at most 1 KiB) and the other fields.
	MaxRequestSize = 2 << 10
	// MaxResponseHeaderSize bounds one Response header frame.
	MaxResponseHeaderSize = 1 << 10
	// MaxRangeChunks bounds the chunks one Request may ask for.
	MaxRangeChunks = 64
	// MaxInFlight bounds the Requests a responder reads ahead of its
	// answers on one stream; a requester keeping more in flight just waits.
	MaxInFlight = 16
	// IdleTimeout closes a stream that carried no request for this long.
	IdleTimeout = 60 * time.Second
	// WriteTimeout bounds writing one response chunk.
	WriteTimeout = 30 * time.Second
)
