// Package pb holds the wire messages of /parley/offer/1.0.0. See package
// offers for the protocol.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative offers.proto
