package erlnode

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/lib"
)

// decodeChecked decodes an encoded term (no version byte) the way the
// connection should: CheckTerm first, so that no header can make ergo
// allocate beyond the input's size.
func decodeChecked(data []byte) (etf.Term, bool) {
	if _, err := CheckTerm(data); err != nil {
		return nil, false
	}
	term, _, err := etf.Decode(data, nil, etf.DecodeOptions{FlagBigPidRef: true})
	return term, err == nil
}

// FuzzCheckTerm: CheckTerm never panics, returns a suffix of its input, and
// never refuses what ergo itself encodes.
func FuzzCheckTerm(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		rest, err := CheckTerm(data)
		if err != nil {
			return
		}
		if !bytes.HasSuffix(data, rest) || len(rest) >= len(data) {
			t.Fatalf("rest of %d bytes is not a proper suffix of the %d byte input", len(rest), len(data))
		}
		term, _, err := etf.Decode(data, nil, etf.DecodeOptions{FlagBigPidRef: true})
		if err != nil {
			return
		}
		buf := lib.TakeBuffer()
		defer lib.ReleaseBuffer(buf)
		if err := etf.Encode(term, buf, etf.EncodeOptions{FlagBigPidRef: true, FlagBigCreation: true}); err != nil {
			return
		}
		if rest, err := CheckTerm(buf.B); err != nil || len(rest) != 0 {
			t.Fatalf("CheckTerm refuses ergo's own encoding of %#v: rest %d bytes, %v", term, len(rest), err)
		}
	})
}

// FuzzTermHelpers runs every accessor on every decodable term: each returns a
// value or an error, never panics, and keeps its promise.
func FuzzTermHelpers(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || data[0] != 131 {
			return
		}
		term, ok := decodeChecked(data[1:])
		if !ok {
			return
		}
		if _, err := Int64(term); err != nil {
			checkShapeError(t, err)
		}
		if v, err := NonNegative(term); err == nil {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("NonNegative returned %v", v)
			}
		} else {
			checkShapeError(t, err)
		}
		_, _ = Atom(term)
		if text, err := Text(term); err == nil && !utf8.ValidString(text) {
			t.Fatalf("Text returned %q, which is not UTF-8", text)
		}
		_, _ = List(term)
		for n := range 4 {
			if tup, err := Tuple(term, n); err == nil && len(tup) != n {
				t.Fatalf("Tuple(_, %d) returned %d elements", n, len(tup))
			}
		}
		if m, err := Proplist(term); err == nil {
			for k := range m {
				if _, err := Field(m, k); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := Map(term); err != nil {
			_ = err.Error()
		}
	})
}

// checkShapeError renders a ShapeError, which must stay short whatever the term.
func checkShapeError(t *testing.T, err error) {
	t.Helper()
	var se *ShapeError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *ShapeError", err)
	}
	if msg := se.Error(); len(msg) > 400 {
		t.Fatalf("error message of %d bytes: %.100s...", len(msg), msg)
	}
}
