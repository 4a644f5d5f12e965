// Package pb holds the wire messages of /parley/files/1.0.0 and the
// canonical manifest encoding. See package files for the protocol.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative files.proto
