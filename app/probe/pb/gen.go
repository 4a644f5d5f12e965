// Package pb holds the wire messages of /parley/probe/1.0.0.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative probe.proto
