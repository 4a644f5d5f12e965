// Package pb holds the wire messages of Parley's DHT layer: the signed
// records stored in the DHT (package dht/records describes them) and the
// routing-table protocol /parley/dht/rt/1.0.0 (package dht describes it).
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative records.proto rt.proto
