// Package pb holds the wire messages of the supernode protocols
// /parley/auth/1.0.0 and /parley/relay/notice/1.0.0 (see package relay).
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative relay.proto
