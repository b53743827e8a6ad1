package consumer

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/sluice-dev/sluice/schema"
)

// Transform turns a source row into the row the target keeps: the message is
// upper-cased (Unicode-aware, the same in the consumer and in verify). It
// changes r in place and never fails; a NULL message stays NULL.
func Transform(r *schema.Row) {
	if r.Message.Valid {
		r.Message.String = upper(r.Message.String)
	}
}

// upper is strings.ToUpper with a quicker path for ASCII text, the common
// case: one pass to look, one to copy, eight bytes at a time
// (BenchmarkUpper), and s itself when it has no lower-case letter.
func upper(s string) string {
	lower := false
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := schema.Word(s, i)
		if x&highs != 0 {
			return strings.ToUpper(s)
		}
		lower = lower || lowerMask(x) != 0
	}
	for j := i; j < len(s); j++ {
		c := s[j]
		if c >= utf8.RuneSelf {
			return strings.ToUpper(s)
		}
		lower = lower || ('a' <= c && c <= 'z')
	}
	if !lower {
		return s
	}
	b := make([]byte, len(s))
	for i = 0; i+8 <= len(s); i += 8 {
		x := schema.Word(s, i)
		binary.LittleEndian.PutUint64(b[i:], x^lowerMask(x)>>2) // 0x80>>2 is the case bit
	}
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

const ones, highs = 0x0101010101010101, 0x8080808080808080

// lowerMask has the high bit of each byte of x, seven-bit ASCII, that is a
// lower-case letter: x+(0x80-'a') reaches the high bit from 'a' up, and
// x+(0x80-'z'-1) from past 'z'. No byte carries into the next.
func lowerMask(x uint64) uint64 {
	return (x + ones*(0x80-'a')) &^ (x + ones*(0x80-'z'-1)) & highs
}
