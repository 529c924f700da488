// Normalising decoded Erlang terms into Go values, in one place.
//
// ergo's decoder hands back an integer as int, int64, uint64 or *big.Int
// depending on its size, a list of small integers as a Go string, a binary as
// []byte, and the empty list as an empty etf.List. The accessors here accept
// every form a value can take and reject everything else with an error, so
// that a reply of unexpected shape fails one collector and never panics.

package erlnode

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// ShapeError describes a reply that does not have the expected shape.
type ShapeError struct {
	Want string
	Got  etf.Term
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("expected %s, got %s", e.Want, describe(e.Got))
}

// describe names a term's type and, for small scalars, its value, without
// ever printing a large term into a log line.
func describe(t etf.Term) string {
	switch v := t.(type) {
	case etf.Atom:
		return fmt.Sprintf("atom %q", truncate([]byte(v)))
	case int, int64, uint64:
		return fmt.Sprintf("integer %v", v)
	case etf.Tuple:
		return fmt.Sprintf("tuple of %d", len(v))
	case etf.List:
		return fmt.Sprintf("list of %d", len(v))
	case []byte:
		return fmt.Sprintf("binary of %d bytes", len(v))
	case string:
		return fmt.Sprintf("string of %d bytes", len(v))
	default:
		return fmt.Sprintf("%T", t)
	}
}

func shapeError(want string, got etf.Term) error { return &ShapeError{Want: want, Got: got} }

// Int64 returns an integer term that fits in int64.
func Int64(t etf.Term) (int64, error) {
	switch v := t.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		if v > math.MaxInt64 {
			return 0, shapeError("an integer within int64", t)
		}
		return int64(v), nil
	case *big.Int:
		if v != nil && v.IsInt64() {
			return v.Int64(), nil
		}
	}
	return 0, shapeError("an integer", t)
}

// NonNegative returns a non-negative integer term as float64, the form
// Prometheus wants; big integers (counters of a long-lived node) are
// accepted up to 64 bits. The runtime keeps every count and size in 64 bits
// at most, so a wider value is not a reading; and with each value below
// 2^64, no sum or product the collectors make can reach +Inf.
func NonNegative(t etf.Term) (float64, error) {
	switch v := t.(type) {
	case uint64:
		return float64(v), nil
	case *big.Int:
		if v != nil && v.Sign() >= 0 && v.BitLen() <= 64 {
			f, _ := new(big.Float).SetInt(v).Float64()
			return f, nil
		}
		return 0, shapeError("a non-negative integer of at most 64 bits", t)
	}
	i, err := Int64(t)
	if err != nil || i < 0 {
		return 0, shapeError("a non-negative integer", t)
	}
	return float64(i), nil
}

// Atom returns an atom's text. ergo decodes the atoms true and false as Go
// booleans; they come back as atoms here.
func Atom(t etf.Term) (string, error) {
	switch v := t.(type) {
	case etf.Atom:
		// Atoms may become label values, which must be UTF-8.
		if !utf8.ValidString(string(v)) {
			return "", shapeError("an atom in UTF-8", t)
		}
		return string(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", shapeError("an atom", t)
}

// IsTrue reports whether t is the atom true, however ergo decoded it.
func IsTrue(t etf.Term) bool {
	a, err := Atom(t)
	return err == nil && a == "true"
}

// Text returns the text of a UTF-8 binary, a charlist or an atom. Text that
// is not UTF-8 is an error: it could be no label value, and the probe sends
// none.
func Text(t etf.Term) (string, error) {
	switch v := t.(type) {
	case []byte:
		if !utf8.Valid(v) {
			return "", shapeError("UTF-8 text", t)
		}
		return string(v), nil
	case string:
		// ergo's decoding of a charlist of code points up to 255 (Latin-1).
		runes := make([]rune, len(v))
		for i := 0; i < len(v); i++ {
			runes[i] = rune(v[i])
		}
		return string(runes), nil
	case etf.Atom:
		return Atom(v)
	case etf.List:
		// A charlist with code points above 255 arrives as a list of integers.
		runes := make([]rune, 0, len(v))
		for _, e := range v {
			i, err := Int64(e)
			if err != nil || i < 0 || i > math.MaxInt32 {
				return "", shapeError("text", t)
			}
			runes = append(runes, rune(i))
		}
		return string(runes), nil
	}
	return "", shapeError("text", t)
}

// List returns a proper list's elements; a string (a list of small integers)
// is turned back into the list of integers it stands for.
func List(t etf.Term) (etf.List, error) {
	switch v := t.(type) {
	case etf.List:
		return v, nil
	case string:
		l := make(etf.List, len(v))
		for i := 0; i < len(v); i++ {
			l[i] = int(v[i])
		}
		return l, nil
	}
	return nil, shapeError("a list", t)
}

// Tuple returns a tuple of exactly n elements.
func Tuple(t etf.Term, n int) (etf.Tuple, error) {
	if tup, ok := t.(etf.Tuple); ok && len(tup) == n {
		return tup, nil
	}
	return nil, shapeError(fmt.Sprintf("a tuple of %d", n), t)
}

// Proplist returns a list of {atom, Value} pairs as a map. Elements of other
// shapes are an error: the calls we make return clean proplists.
func Proplist(t etf.Term) (map[string]etf.Term, error) {
	l, err := List(t)
	if err != nil {
		return nil, err
	}
	m := make(map[string]etf.Term, len(l))
	for _, e := range l {
		pair, err := Tuple(e, 2)
		if err != nil {
			return nil, fmt.Errorf("proplist element: %w", err)
		}
		k, err := Atom(pair[0])
		if err != nil {
			return nil, fmt.Errorf("proplist key: %w", err)
		}
		m[k] = pair[1]
	}
	return m, nil
}

// Map returns a map term, accepting only atom keys, keyed by their text.
func Map(t etf.Term) (map[string]etf.Term, error) {
	m, ok := t.(etf.Map)
	if !ok {
		return nil, shapeError("a map", t)
	}
	out := make(map[string]etf.Term, len(m))
	for k, v := range m {
		a, err := Atom(k)
		if err != nil {
			return nil, fmt.Errorf("map key: %w", err)
		}
		out[a] = v
	}
	return out, nil
}

// Field returns m[key], or an error naming the missing key.
func Field(m map[string]etf.Term, key string) (etf.Term, error) {
	v, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("missing key %q", key)
	}
	return v, nil
}
