// Checking an encoded term's declared sizes before ergo's decoder trusts them.
//
// ergo's etf.Decode allocates a list, tuple, binary or fun's free variables
// from the count in its header before reading the elements, so a few bytes
// claiming 2^32 elements make the Go runtime die of "out of memory", which no
// recover() catches. CheckTerm walks the encoding without allocating and
// refuses any count larger than the bytes left to hold it (every element takes
// at least one byte), so that a term it accepts costs ergo memory in
// proportion to its length.

package erlnode

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var errTruncated = errors.New("term truncated")

// CheckTerm checks that b starts with one encoded term (without the version
// byte) whose declared sizes fit in b, and returns the bytes after it. It
// mirrors the layouts ergo's decoder reads and refuses the tags ergo cannot
// decode.
func CheckTerm(b []byte) (rest []byte, err error) {
	pending := uint64(1) // terms still to read
	for pending > 0 {
		if pending > uint64(len(b)) {
			return nil, fmt.Errorf("%d more terms declared than the %d bytes left can hold", pending, len(b))
		}
		pending--
		tag := b[0]
		b = b[1:]
		var children uint64
		switch tag {
		case 97, 82: // small integer, atom cache reference
			b, err = skip(b, 1)
		case 98: // integer
			b, err = skip(b, 4)
		case 70: // new float
			b, err = skip(b, 8)
		case 99: // float as text
			b, err = skip(b, 31)
		case 106: // nil
		case 100, 118, 107: // atom, UTF-8 atom, string: 2-byte length
			b, err = skipSized(b, 2, 0)
		case 115, 119: // small atoms: 1-byte length
			b, err = skipSized(b, 1, 0)
		case 109: // binary
			b, err = skipSized(b, 4, 0)
		case 77: // bit binary: length, then the bits in the last byte
			b, err = skipSized(b, 4, 1)
		case 110: // small big: length, then the sign
			if negativeBeyondInt64(b) {
				return nil, errors.New("a negative integer below -2^63 in 8 bytes, which ergo's decoder turns positive")
			}
			b, err = skipSized(b, 1, 1)
		case 111: // large big
			b, err = skipSized(b, 4, 1)
		case 104: // small tuple
			if len(b) < 1 {
				return nil, errTruncated
			}
			children, b = uint64(b[0]), b[1:]
		case 105, 116, 108: // large tuple, map, list
			if len(b) < 4 {
				return nil, errTruncated
			}
			n := uint64(binary.BigEndian.Uint32(b))
			b = b[4:]
			switch tag {
			case 105:
				children = n
			case 116:
				children = 2 * n
			case 108:
				children = n + 1 // the elements and the tail
			}
		case 113: // export: module, function, arity
			children = 3
		case 112: // new fun: size, arity, uniq, index, free variable count
			if len(b) < 29 {
				return nil, errTruncated
			}
			// module, old index, old uniq, pid, then the free variables
			children = 4 + uint64(binary.BigEndian.Uint32(b[25:29]))
			b = b[29:]
		case 103: // pid: node, id, serial, creation
			b, err = skipNode(b, 9)
		case 88: // new pid
			b, err = skipNode(b, 12)
		case 102: // port: node, id, creation
			b, err = skipNode(b, 5)
		case 89: // new port
			b, err = skipNode(b, 8)
		case 114, 90: // new and newer reference: id length, node, creation, ids
			if len(b) < 2 {
				return nil, errTruncated
			}
			ids := int(binary.BigEndian.Uint16(b))
			creation := 1
			if tag == 90 {
				creation = 4
			}
			b, err = skipNode(b[2:], creation+4*ids)
		default:
			return nil, fmt.Errorf("term tag %d is not supported", tag)
		}
		if err != nil {
			return nil, err
		}
		pending += children
	}
	return b, nil
}

// negativeBeyondInt64 reports whether a small big's body (length, sign,
// little-endian digits) is a negative integer of 8 bytes below -2^63: ergo
// negates such a magnitude in uint64 and keeps the wrapped int64, so
// -(2^64 - 1) would arrive as 1.
func negativeBeyondInt64(b []byte) bool {
	if len(b) < 10 || b[0] != 8 || b[1] != 1 {
		return false
	}
	return binary.LittleEndian.Uint64(b[2:10]) > 1<<63
}

// skip drops n bytes.
func skip(b []byte, n int) ([]byte, error) {
	if len(b) < n {
		return nil, errTruncated
	}
	return b[n:], nil
}

// skipSized drops a width-byte big-endian length, extra bytes, and then that
// many bytes.
func skipSized(b []byte, width, extra int) ([]byte, error) {
	if len(b) < width {
		return nil, errTruncated
	}
	var n uint64
	for _, c := range b[:width] {
		n = n<<8 | uint64(c)
	}
	b = b[width:]
	if n+uint64(extra) > uint64(len(b)) {
		return nil, fmt.Errorf("%d bytes declared, %d left", n, len(b)-extra)
	}
	return b[uint64(extra)+n:], nil
}

// skipNode drops the atom naming a pid's, port's or reference's node, then n
// bytes; ergo refuses any other term in that place.
func skipNode(b []byte, n int) ([]byte, error) {
	if len(b) < 1 {
		return nil, errTruncated
	}
	var err error
	switch tag := b[0]; tag {
	case 100, 118:
		b, err = skipSized(b[1:], 2, 0)
	case 115, 119:
		b, err = skipSized(b[1:], 1, 0)
	case 82:
		b, err = skip(b[1:], 1)
	default:
		return nil, fmt.Errorf("expected a node name atom, got tag %d", tag)
	}
	if err != nil {
		return nil, err
	}
	return skip(b, n)
}
