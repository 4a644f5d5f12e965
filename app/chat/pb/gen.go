// Package pb holds the wire messages of /parley/chat/2.0.0 (and 1.0.0).
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative chat.proto
