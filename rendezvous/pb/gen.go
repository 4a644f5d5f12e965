// Package pb holds the wire messages of /parley/rendezvous/1.0.0; package
// rendezvous describes the protocol.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative rendezvous.proto
