// Distribution capability flags, and the set the exporter advertises.

package erlnode

import (
	"fmt"
	"strings"
)

// Capability bits of the Erlang distribution handshake, as defined by ERTS
// (kernel/include/dist.hrl).
const (
	flagPublished          uint64 = 0x01
	flagExtendedReferences uint64 = 0x04
	flagDistMonitor        uint64 = 0x08
	flagFunTags            uint64 = 0x10
	flagNewFunTags         uint64 = 0x80
	flagExtendedPidsPorts  uint64 = 0x100
	flagExportPtrTag       uint64 = 0x200
	flagBitBinaries        uint64 = 0x400
	flagNewFloats          uint64 = 0x800
	flagDistHdrAtomCache   uint64 = 0x2000
	flagUTF8Atoms          uint64 = 0x10000
	flagMapTag             uint64 = 0x20000
	flagBigCreation        uint64 = 0x40000
	flagSendSender         uint64 = 0x80000
	flagBigSeqtraceLabels  uint64 = 0x100000
	flagExitPayload        uint64 = 0x400000
	flagFragments          uint64 = 0x800000
	flagHandshake23        uint64 = 0x1000000
	flagUnlinkID           uint64 = 0x2000000
	flagMandatory25Digest  uint64 = 0x4000000
	flagSpawn              uint64 = 1 << 32
	flagV4NC               uint64 = 1 << 34
	flagAlias              uint64 = 1 << 35
	flagsMandatoryOTP25           = flagExtendedReferences | flagFunTags | flagExtendedPidsPorts |
		flagNewFunTags | flagExportPtrTag | flagBitBinaries | flagNewFloats | flagUTF8Atoms |
		flagMapTag | flagBigCreation | flagHandshake23
)

// advertisedFlags is what the exporter offers every peer.
//
// Left out on purpose:
//   - published: a published node joins the target cluster's mesh and global's
//     sync protocol; a monitor must stay hidden;
//   - atom cache and fragments: the proto then receives every message whole,
//     in the plain pass-through framing, which keeps the decoder small;
//   - spawn and alias: nobody may start anything on, or address anything at,
//     the exporter beyond the replies it asked for.
//
// Included because newer releases insist: OTP 26 refuses peers without
// UNLINK_ID and V4_NC, OTP 27 refuses peers without MANDATORY_25_DIGEST.
const advertisedFlags = flagsMandatoryOTP25 | flagMandatory25Digest | flagDistMonitor |
	flagSendSender | flagBigSeqtraceLabels | flagExitPayload | flagUnlinkID | flagV4NC

// requiredPeerFlags are the capabilities the exporter relies on in a peer.
const requiredPeerFlags = flagExtendedReferences | flagExtendedPidsPorts | flagUTF8Atoms |
	flagMapTag | flagBigCreation | flagHandshake23

// flagNames names the capabilities the exporter may have to ask for, as
// dist.hrl spells them, for error messages.
var flagNames = []struct {
	flag uint64
	name string
}{
	{flagExtendedReferences, "EXTENDED_REFERENCES"},
	{flagExtendedPidsPorts, "EXTENDED_PIDS_PORTS"},
	{flagUTF8Atoms, "UTF8_ATOMS"},
	{flagMapTag, "MAP_TAG"},
	{flagBigCreation, "BIG_CREATION"},
	{flagHandshake23, "HANDSHAKE_23"},
}

// describeFlags names the bits of f, and shows any it cannot name in hex.
func describeFlags(f uint64) string {
	var names []string
	for _, n := range flagNames {
		if f&n.flag != 0 {
			names = append(names, n.name)
			f &^= n.flag
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("0x%x", f))
	}
	return strings.Join(names, ", ")
}
