// Package pb holds the encodings of package seal: signed device keys and
// signed mailbox envelopes.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative seal.proto
