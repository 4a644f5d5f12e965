// Package pb holds the wire form of membership certificates.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative cert.proto
