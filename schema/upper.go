package schema

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// upperBytes is strings.ToUpper for the text form of a value (the `upper`
// transform), with a quicker path for ASCII text, the common case: one pass
// to look, one to copy, eight bytes at a time (BenchmarkUpper). It returns
// v itself when nothing changes, else a new slice.
func upperBytes(v []byte) []byte {
	b, how := upperASCII(v)
	switch how {
	case upperSame:
		return v
	case upperOther:
		return bytes.ToUpper(v)
	}
	return b
}

// What upperASCII found.
const (
	upperSame  = iota // ASCII with no lower-case letter: nothing to do
	upperDone         // ASCII, upper-cased into a new slice
	upperOther        // not ASCII: the caller takes the Unicode path
)

// upperASCII upper-cases seven-bit ASCII text into a new slice.
func upperASCII[T string | []byte](s T) ([]byte, int) {
	lower := false
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := Word(s, i)
		if x&highs != 0 {
			return nil, upperOther
		}
		lower = lower || lowerMask(x) != 0
	}
	for j := i; j < len(s); j++ {
		c := s[j]
		if c >= utf8.RuneSelf {
			return nil, upperOther
		}
		lower = lower || ('a' <= c && c <= 'z')
	}
	if !lower {
		return nil, upperSame
	}
	b := make([]byte, len(s))
	for i = 0; i+8 <= len(s); i += 8 {
		x := Word(s, i)
		binary.LittleEndian.PutUint64(b[i:], x^lowerMask(x)>>2) // 0x80>>2 is the case bit
	}
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return b, upperDone
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// lowerMask has the high bit of each byte of x, seven-bit ASCII, that is a
// lower-case letter: x+(0x80-'a') reaches the high bit from 'a' up, and
// x+(0x80-'z'-1) from past 'z'. No byte carries into the next.
func lowerMask(x uint64) uint64 {
	return (x + ones*(0x80-'a')) &^ (x + ones*(0x80-'z'-1)) & highs
}
