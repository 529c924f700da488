// Package erltest starts real BEAM nodes of several OTP releases for integration tests.
//
// OTP 25 is the host's Erlang (Debian bookworm's erlang-nox). OTP 27 and 29
// come from Debian trixie and sid: each is a debootstrap root with
// erlang-base installed, which the debroot package builds on first use and
// caches between runs under $BEAM_EXPORTER_OTP_ROOTS (default
// /var/cache/beam_exporter/otp-roots), one directory per suite. Nodes in a
// root are started with chroot(2) but share the host's network namespace,
// loopback and EPMD, so a client on the host reaches them exactly like host
// nodes (name@<short host name>). Each root has a proc file system mounted
// on its /proc, so a node reads /proc/self as a host node does; the mount
// stays between runs.
//
// The harness talks to a node over its standard input and output (an
// inline read-eval-print loop), never over Erlang distribution, because
// distribution is what the code under test implements.
//
// Files:
//
//	releases.go  which OTP releases to test, and where each comes from
//	node.go      Start, Eval, Signal, Kill, Restart: the node harness
//	repl.go      the Erlang side of the control channel
//	epmd.go      the host's EPMD: started when needed, and its NAMES
//	proxy.go     a TCP proxy that breaks the network between exporter and node
//	certs.go     a throwaway CA for tests of TLS
//
// Environment:
//
//	BEAM_EXPORTER_TEST_OTP              comma-separated OTP majors to test (default 25,27,29)
//	BEAM_EXPORTER_OTP_ROOTS             cache directory for the debootstrap roots
//	BEAM_EXPORTER_DEBIAN_MIRROR         Debian mirror URL (default: first .../debian URI in apt's sources)
//	BEAM_EXPORTER_DEBOOTSTRAP_NO_CHECK_GPG=1
//	                                    last resort when no available keyring verifies the suite's
//	                                    Release file: build the root without signature checks
//
// Building a root takes minutes and needs root privileges and debootstrap;
// the first `go test` may need a -timeout above the default 10m.
// Delete a suite's directory to force a rebuild.
package erltest
