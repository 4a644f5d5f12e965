// Package files is Parley's content addressing and file transfer: the
// manifest that names a file or a folder and its CID, the safe placement of
// paths received from the network, the in-place index of shared files, the
// partial-download store, and the protocol /parley/files/1.0.0 with its
// server and multi-source fetcher.
//
// # Content addressing
//
// A file is cut into chunks of ChunkSize (1 MiB; every chunk but a file's
// last is full) and each chunk is hashed with BLAKE3-256. The manifest
// (pb.Manifest, canonical protobuf: fields in number order, no defaults,
// no unknown fields) lists the content's regular files in byte-wise path
// order: the path relative to the download folder ('/'-separated; a single
// file's path is its name, a folder's files start with the folder's
// name), the size, an executable bit, and the concatenated chunk hashes.
// Chunks are numbered across entries in order; empty files have none.
//
// The content's CID is CIDv1 with codec raw (0x55) over the canonical
// manifest bytes and multihash blake3 (0x1e, 32 bytes): whoever holds the
// CID can verify the manifest, and through its hashes every chunk. Decode
// refuses anything but the canonical bytes, so one content has one CID.
//
// Chunks are hashed with github.com/zeebo/blake3, which measured 1.0-1.3
// GB/s on 64 MiB on the 2-vCPU development machine against 0.2-0.6 GB/s
// for lukechampine.com/blake3, and as fast or faster on single 1 MiB
// chunks.
//
// # Limits and path rules
//
// A manifest is refused (ErrBadManifest) when it is over MaxManifestSize
// bytes, MaxEntries files, MaxChunks chunks, when a size does not match its
// hash count or the sizes do not add up to the total, when paths are not
// sorted and unique, or when two paths collide ignoring case and Unicode
// normalisation (as on Windows and macOS) or one is both a file and a
// folder. Every path must pass ValidatePath, which applies the
// rules of every platform at once: relative, no empty, "." or ".."
// component, no control characters or <>:"\|?*, no trailing dot or space,
// no Windows device name (CON, NUL, COM1, LPT1…, with any extension), at
// most MaxNameLen bytes a component, MaxDepth components and MaxPathLen
// bytes. Before a byte is written, OpenPartial also refuses a path blocked
// on disk (a symbolic link or a file where a folder goes, or an existing
// file: a download never overwrites), and every write goes through os.Root,
// which cannot be led out of the download folder by a link.
//
// # Sharing in place
//
// Index (SQLite) records each shared file or folder where it is, with its
// manifest and each file's size, modification time, inode and
// status-change time at hashing time. Serving checks these before and
// after reading every chunk, so a file changed after sharing is refused
// (ErrChanged, STATUS_CHANGED), never served as the old content. Any write
// moves the change time, which no one can set back (mtime can be), so the
// bytes read between two equal checks are the indexed ones and need no
// hashing: the requester verifies every chunk anyway. Where there is no
// change time (another platform, an index from before it was recorded),
// served chunks are hashed again. A chmod or a new hard link moves it too:
// such a file is refused until published again.
//
// # Downloads
//
// A download lives in <download folder>/.parley-partial/<cid>/: the
// manifest, one data file per entry (named by entry number, so no name
// from the network is used before the end) with each verified chunk
// written at its offset, and a bitmap of verified chunks. Data files are
// fsynced before the bitmap that marks their chunks (every 32 chunks, and
// on pause), so after a crash, a reboot or a cancelled context Fetch
// resumes from what is marked. When all chunks are verified, Finish reads
// and verifies once more the chunks verified by an earlier run (the disk
// had time to lose them: they are fetched again if it did; the chunks of
// this run were hashed right before they were written) and renames each
// file into place. A
// full disk stops the transfer with a *NoSpaceError saying how many bytes
// are still needed; the verified chunks stay.
//
// # Protocol /parley/files/1.0.0
//
// The requester opens a stream and writes Request frames (uvarint length
// + protobuf, at most MaxRequestSize bytes), without waiting for answers;
// the responder answers them in order. Each answer starts with a Response
// header (at most MaxResponseHeaderSize bytes):
//
//   - KIND_CERTIFICATE (certificate): the requester's membership
//     certificate, sent first; one Response{OK} with no bytes when
//     ServerConfig.Certify accepts it (the username it names then counts
//     for the rest of the stream, until the certificate expires), or
//     REFUSED saying why.
//   - KIND_MANIFEST: one Response{OK, size} followed by size bytes of
//     manifest, which the requester checks against the CID it asked for.
//   - KIND_CHUNKS (start, count ≤ MaxRangeChunks): for each chunk a
//     Response{OK, index, size} followed by size raw bytes, which the
//     requester checks against the manifest's hash as it arrives. Chunk
//     data is never wrapped in protobuf, so it is not copied or allocated
//     per chunk.
//
// A non-OK Response carries no bytes and ends the answer to its request;
// the stream stays usable. Statuses: NOT_FOUND (not served here), REFUSED
// (the Admitter said no: published content admits the holders of a valid
// membership certificate, shared content the devices of the user it was
// offered to, who prove it with their certificate too),
// BAD_REQUEST (malformed, unknown kind, range out of bounds or too long),
// CHANGED (the source changed on disk), INTERNAL (could not read). Errors
// carry a safe text; the detail stays in the responder's log. The responder
// closes a stream idle for IdleTimeout and gives up on a chunk it cannot
// write within WriteTimeout. Streams may run over relayed connections.
//
// # Upload limit
//
// ServerConfig.UploadLimit caps the bytes a second a Server sends, chunks
// and manifests, over all its streams together: one token bucket
// (golang.org/x/time/rate) whose burst is an eighth of a second of sending,
// between 16 and 256 KiB. Each stream writes in pieces of at most the
// burst, each after waiting for its tokens and flushed as it goes, so the
// streams share the cap in turn. A wait ends when the server closes and
// counts against the chunk's WriteTimeout. A requester drops a provider
// that takes longer than its StallTimeout (15s by default) over one 1 MiB
// chunk, so a cap below about 70 KB/s for each stream served at once
// makes the requesters give up on this provider.
//
// # Fetching from several providers
//
// Fetch takes the manifest from the partial download or the first provider
// that serves one matching the CID, then runs one worker per provider. The
// missing chunks form one queue; each worker pulls spans of consecutive
// chunks sized to about 250 ms at that provider's measured rate and keeps
// Window requests in flight on its stream, so a faster provider takes more
// of the file. Once the queue is empty (the end game), a worker takes over
// chunks the provider holding the most has asked for and not received,
// from the end, each at most once; the first copy to arrive is kept. It
// takes half of what that provider holds beyond the worker's own
// outstanding chunks (so that, at equal speeds, its copy comes first),
// and a last chunk only once it has nothing else to do: a worker busy with
// its own chunks does not ask for copies their owner will send first. A
// provider that sends a chunk failing its hash, breaks the
// protocol, answers non-OK, or sends nothing for StallTimeout is dropped
// and its unfinished chunks return to the queue for the others. Progress
// reports verified bytes, rate and active providers. Cancelling the
// context pauses; the next Fetch resumes. Memory does not grow with the
// content beyond its manifest (32 bytes per MiB) and a per-chunk state
// word; each worker and each serving stream holds one chunk buffer.
package files

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/files")
