// Package debroot builds the Debian debootstrap roots that hold the OTP
// releases the host does not have, verifies them, and caches them between
// test runs; erltest starts nodes inside them.
//
// Ensure builds a root in this order:
//
//	roots.go     the cache and its lock, debootstrap, the check of the
//	             root's Erlang, and the stamp that marks it complete
//	mirror.go    the Debian mirror, from the machine's own apt sources
//	keyring.go   a keyring that verifies the suite's Release file
//	fsutil.go    flock, removing half-built roots, small file copies
//	progress.go  progress lines on stderr while a build runs
package debroot
