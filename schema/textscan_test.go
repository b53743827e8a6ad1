package schema

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// plainASCIIBytewise is PlainASCII one byte at a time, the reference.
func plainASCIIBytewise(s string, i int) int {
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return i
		}
	}
	return len(s)
}

func TestPlainASCII(t *testing.T) {
	for _, tc := range []struct {
		s    string
		i    int
		want int
	}{
		{"", 0, 0},
		{"abc", 0, 3},
		{"abcdefghijklmnop", 0, 16},
		{"abcdefghijklmnop", 5, 16},
		{"abcdefgh\"", 0, 8},
		{"abcdefg\\hijk", 0, 7},
		{"abcdefghij\tk", 0, 10},
		{"abcdefghijklm\x00", 0, 13},
		{"abcdefghijklmnopé", 0, 16},
		{"\x1f234567890", 0, 0},
		{" !#$%&'()*+,-./0123456789:;<=>?@[]^_`{|}~\x7f", 0, 42},
		{"abc\"defghijklmnopqrstu", 4, 22},
	} {
		if got := PlainASCII(tc.s, tc.i); got != tc.want {
			t.Errorf("PlainASCII(%q, %d) = %d, want %d", tc.s, tc.i, got, tc.want)
		}
		if got := PlainASCII([]byte(tc.s), tc.i); got != tc.want {
			t.Errorf("PlainASCII([]byte(%q), %d) = %d, want %d", tc.s, tc.i, got, tc.want)
		}
	}
	// Every byte value at every position of a word, among plain bytes of
	// every value next to it (borrows from a neighbour must not hide or
	// invent a match), against the byte-wise reference.
	r := rand.New(rand.NewPCG(1, 2))
	plain := []byte{0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7e, 0x7f, 'a', '0'}
	for c := range 256 {
		for pos := range 20 {
			b := make([]byte, 20)
			for k := range b {
				b[k] = plain[r.IntN(len(plain))]
			}
			b[pos] = byte(c)
			s := string(b)
			for start := range 3 {
				if got, want := PlainASCII(s, start), plainASCIIBytewise(s, start); got != want {
					t.Fatalf("PlainASCII(%q, %d) = %d, want %d", s, start, got, want)
				}
			}
		}
	}
	for range 20000 {
		b := make([]byte, r.IntN(40))
		for k := range b {
			b[k] = byte(r.IntN(256))
			if r.IntN(4) > 0 {
				b[k] = plain[r.IntN(len(plain))]
			}
		}
		s := string(b)
		if got, want := PlainASCII(s, 0), plainASCIIBytewise(s, 0); got != want {
			t.Fatalf("PlainASCII(%q, 0) = %d, want %d", s, got, want)
		}
	}
}

// BenchmarkPlainASCII scans a message of the seeded length (about 100
// bytes) word-wise against byte-wise.
//
//	go test -run '^$' -bench PlainASCII -count 6 ./schema
func BenchmarkPlainASCII(b *testing.B) {
	s := strings.Repeat("TEMPERATURE CLOSED CRITICAL TIMEOUT ", 3)
	b.Run("words", func(b *testing.B) {
		for b.Loop() {
			if PlainASCII(s, 0) != len(s) {
				b.Fatal("stopped early")
			}
		}
	})
	b.Run("bytes", func(b *testing.B) {
		for b.Loop() {
			if plainASCIIBytewise(s, 0) != len(s) {
				b.Fatal("stopped early")
			}
		}
	})
}
