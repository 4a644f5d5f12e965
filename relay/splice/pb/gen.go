// Package pb holds the wire messages of the relay fast path
// /parley/splice/1.0.0 and /parley/splice/offer/1.0.0 (see package
// relay/splice).
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative splice.proto
