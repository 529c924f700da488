package erlnode

import (
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestCheckTerm(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		rest int    // bytes left after the term, when valid
		err  string // part of the error, when not
	}{
		{"small integer", []byte{97, 7}, 0, ""},
		{"trailing payload", []byte{97, 7, 131, 106}, 2, ""},
		{"list [1]", []byte{108, 0, 0, 0, 1, 97, 1, 106}, 0, ""},
		{"empty map", []byte{116, 0, 0, 0, 0}, 0, ""},
		{"pid", append([]byte{88, 119, 1, 'a'}, make([]byte, 12)...), 0, ""},
		{"newer reference", append([]byte{90, 0, 3, 119, 1, 'a'}, make([]byte, 16)...), 0, ""},
		{"list claiming 2^32-2 elements", []byte{108, 0xff, 0xff, 0xff, 0xfe, 106, 106}, 0, "more terms declared"},
		{"tuple claiming 2^32-1 elements", []byte{105, 0xff, 0xff, 0xff, 0xff, 97, 1}, 0, "more terms declared"},
		{"map claiming 2^31 pairs", []byte{116, 0x80, 0, 0, 0, 97, 1}, 0, "more terms declared"},
		{"binary claiming 4 GiB", []byte{109, 0xff, 0xff, 0xff, 0xfe, 1, 2}, 0, "bytes declared"},
		{"bit binary claiming 4 GiB", []byte{77, 0xff, 0xff, 0xff, 0xff, 3, 1}, 0, "bytes declared"},
		{"fun with 2^32-1 free variables", append(append([]byte{112}, make([]byte, 25)...), 0xff, 0xff, 0xff, 0xff, 0, 0, 0), 0, "more terms declared"},
		{"atom longer than the input", []byte{118, 0xff, 0xff, 'a'}, 0, "bytes declared"},
		{"pid without a node atom", append([]byte{88, 97, 1}, make([]byte, 12)...), 0, "node name atom"},
		{"truncated integer", []byte{98, 0, 0}, 0, "truncated"},
		{"-(2^64 - 1), which ergo decodes as 1", []byte{110, 8, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, "below -2^63"},
		{"-(2^63 + 1)", []byte{110, 8, 1, 1, 0, 0, 0, 0, 0, 0, 0x80}, 0, "below -2^63"},
		{"-2^63", []byte{110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0x80}, 0, ""},
		{"2^64 - 1", []byte{110, 8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, ""},
		{"unknown tag", []byte{121, 0}, 0, "not supported"},
		{"empty", nil, 0, "more terms declared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rest, err := CheckTerm(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("CheckTerm = %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil || len(rest) != tc.rest {
				t.Fatalf("CheckTerm = %d bytes left, %v; want %d, nil", len(rest), err, tc.rest)
			}
			// What CheckTerm accepts, ergo decodes.
			if _, _, err := etf.Decode(tc.in, nil, etf.DecodeOptions{FlagBigPidRef: true}); err != nil {
				t.Fatalf("ergo refuses a term CheckTerm accepts: %v", err)
			}
		})
	}
}
