package schema

import (
	"strings"
	"testing"
)

// TestUpperMatchesToUpper checks the ASCII path against strings.ToUpper,
// on ASCII, on non-ASCII and on invalid UTF-8, in the eight-byte words and
// in the bytes after them.
func TestUpperMatchesToUpper(t *testing.T) {
	cases := []string{"", "a", "Z", "abc xyz", "ALREADY UPPER 123", "mixed Case `{@[", "ünïcode", "straße", "\xff\xfeab",
		"failed signal passed normal cleared garage temperature normal sensor restored level voltage meter meter press", "ǅ ǆ ß ﬀ"}
	for c := range 256 {
		b := string([]byte{byte(c)})
		cases = append(cases, "ab"+string(rune(c))+"yz", "ab"+b+"yz",
			// every byte value in each lane of a word, beside letters either side of the range
			"@AZ[`az{"[:c%8]+b+"@AZ[`az{abcdefghij"[c%8:], "ABCDEFGH"+b+"abcdefghijklmno"+b)
	}
	for _, s := range cases {
		if got, want := string(upperBytes([]byte(s))), strings.ToUpper(s); got != want {
			t.Errorf("upperBytes(%q) = %q, want %q", s, got, want)
		}
	}
}

// BenchmarkUpper upper-cases a seeded message, against strings.ToUpper.
//
//	go test -run '^$' -bench Upper -benchmem -count 6 ./schema
func BenchmarkUpper(b *testing.B) {
	s := "failed signal passed normal cleared garage temperature normal sensor restored level voltage meter meter press"
	v := []byte(s)
	b.Run("upper", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = upperBytes(v)
		}
	})
	b.Run("strings.ToUpper", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = strings.ToUpper(s)
		}
	})
}
