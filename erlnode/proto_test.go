package erlnode

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/lib"
)

func encodePacket(t *testing.T, terms ...etf.Term) []byte {
	t.Helper()
	buf := lib.TakeBuffer()
	buf.AppendByte(passThrough)
	for _, term := range terms {
		buf.AppendByte(versionMagic)
		if err := etf.Encode(term, buf, etf.EncodeOptions{FlagBigCreation: true}); err != nil {
			t.Fatal(err)
		}
	}
	return append([]byte(nil), buf.B...)
}

func TestDecodePacket(t *testing.T) {
	to := etf.Pid{Node: "beam_exporter@vm", ID: 42, Creation: 7}
	control, payload, err := decodePacket(encodePacket(t, etf.Tuple{opSend, etf.Atom(""), to}, etf.Tuple{etf.Atom("hello"), 1}))
	if err != nil {
		t.Fatal(err)
	}
	if control[0] != opSend || control[2] != to {
		t.Errorf("control = %#v", control)
	}
	if p, ok := payload.(etf.Tuple); !ok || p[0] != etf.Atom("hello") {
		t.Errorf("payload = %#v", payload)
	}
	for name, packet := range map[string][]byte{
		"empty":             {},
		"atom cache header": {68, 0},
		"no version magic":  {passThrough, 0},
		"truncated":         encodePacket(t, etf.Tuple{opSend, etf.Atom(""), to})[:6],
		"control not tuple": encodePacket(t, etf.Atom("x")),
		"bad payload magic": append(encodePacket(t, etf.Tuple{opSend}), 0, 1),
		// A list header claiming 2^32-2 elements: decoded unchecked, ergo
		// would allocate them all and the process would die out of memory.
		"control list bomb": {passThrough, versionMagic, 108, 0xff, 0xff, 0xff, 0xfe, 106, 106},
		"payload list bomb": append(encodePacket(t, etf.Tuple{opSend}), versionMagic, 108, 0xff, 0xff, 0xff, 0xfe, 106, 106),
	} {
		if _, _, err := decodePacket(packet); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestChallengeDigest(t *testing.T) {
	// md5("cookie" ++ "12345"), as dist_util computes it; the figure comes
	// from `printf cookie12345 | md5sum`.
	got := challengeDigest("cookie", 12345)
	want := [16]byte{0x55, 0x63, 0x36, 0x0e, 0xe4, 0x7f, 0x35, 0x9f, 0xc1, 0xcb, 0x10, 0x7e, 0x01, 0x05, 0x2d, 0x08}
	if got != want {
		t.Errorf("digest = %x", got)
	}
}
