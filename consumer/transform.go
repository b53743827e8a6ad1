package consumer

import (
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
// case: one pass to look, one to copy (BenchmarkUpper), and s itself when
// it has no lower-case letter.
func upper(s string) string {
	lower := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToUpper(s)
		}
		lower = lower || ('a' <= c && c <= 'z')
	}
	if !lower {
		return s
	}
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
