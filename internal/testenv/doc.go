// Package testenv starts a real ACME CA, Pebble, for tests of an ACME client.
//
// StartPebble runs Pebble inside the test binary, through internal/devca;
// StartPebbleProcess runs the pebble command as a separate process. Both put
// Pebble behind a handler that counts requests and can inject faults, start a
// challtestsrv DNS server that answers every A query with 127.0.0.1, and stop
// everything in t.Cleanup. Pebble's log is kept and shown with t.Log only if
// the test fails.
//
// StartBIND starts BIND 9's named for dns-01 tests: authoritative zones
// open to TSIG-signed dynamic updates, secondaries, or a resolver; with
// PebbleOptions.DNSServer, Pebble validates through it.
package testenv
