package erlnode

import (
	"math/big"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestNonNegative(t *testing.T) {
	max64, _ := new(big.Int).SetString("18446744073709551615", 10) // 2^64 - 1
	beyond64 := new(big.Int).Lsh(big.NewInt(1), 64)
	neg := big.NewInt(-5)
	beyondFloat := new(big.Int).Lsh(big.NewInt(1), 1100)
	for _, tc := range []struct {
		in    etf.Term
		want  float64
		valid bool
	}{
		{7, 7, true},
		{int64(1 << 40), 1 << 40, true},
		{uint64(1 << 63), 1 << 63, true},
		{max64, 18446744073709551615, true},
		{beyond64, 0, false},                              // wider than any count the runtime keeps
		{new(big.Int).Lsh(big.NewInt(1), 1023), 0, false}, // finite, but two of them sum to +Inf
		{-1, 0, false},
		{neg, 0, false},
		{beyondFloat, 0, false},
		{1.5, 0, false},
		{"7", 0, false},
		{etf.Atom("undefined"), 0, false},
		{nil, 0, false},
	} {
		got, err := NonNegative(tc.in)
		if (err == nil) != tc.valid || got != tc.want {
			t.Errorf("NonNegative(%#v) = %v, %v; want %v (valid %v)", tc.in, got, err, tc.want, tc.valid)
		}
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		in    etf.Term
		want  string
		valid bool
	}{
		{"25", "25", true},                           // a charlist of small integers
		{[]byte("code_server"), "code_server", true}, // a binary
		{etf.Atom("rex"), "rex", true},
		{etf.List{0x43f, 0x440}, "пр", true}, // a charlist beyond Latin-1
		{"caf\xe9", "café", true},            // a Latin-1 charlist, as ergo decodes it
		{[]byte("caf\xc3\xa9"), "café", true},
		{[]byte("\xff\xfe"), "", false},  // a binary that is not UTF-8
		{etf.Atom("caf\xe9"), "", false}, // an atom that is not UTF-8 (Atom refuses it too)
		{etf.List{}, "", true},
		{etf.List{-1}, "", false},
		{etf.List{etf.Atom("a")}, "", false},
		{42, "", false},
	} {
		got, err := Text(tc.in)
		if (err == nil) != tc.valid || got != tc.want {
			t.Errorf("Text(%#v) = %q, %v; want %q (valid %v)", tc.in, got, err, tc.want, tc.valid)
		}
	}
}

func TestListAcceptsStrings(t *testing.T) {
	l, err := List(string([]byte{3, 0, 1}))
	if err != nil || len(l) != 3 || l[0] != 3 || l[2] != 1 {
		t.Fatalf("List(string) = %v, %v", l, err)
	}
	if _, err := List(etf.Tuple{}); err == nil {
		t.Fatal("List(tuple) succeeded")
	}
}

func TestProplistAndMap(t *testing.T) {
	p, err := Proplist(etf.List{etf.Tuple{etf.Atom("total"), 5}})
	if err != nil || p["total"] != 5 {
		t.Fatalf("Proplist = %v, %v", p, err)
	}
	for _, bad := range []etf.Term{etf.List{etf.Atom("x")}, etf.List{etf.Tuple{1, 2}}, etf.Atom("x")} {
		if _, err := Proplist(bad); err == nil {
			t.Errorf("Proplist(%#v) succeeded", bad)
		}
	}
	if _, err := Map(etf.Map{1: 2}); err == nil {
		t.Error("Map with an integer key succeeded")
	}
	m, _ := Map(etf.Map{etf.Atom("a"): 1})
	if _, err := Field(m, "b"); err == nil {
		t.Error("Field of a missing key succeeded")
	}
}
