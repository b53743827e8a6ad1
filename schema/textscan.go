package schema

// Word returns the eight bytes of s at i as one number, the first byte in
// the lowest eight bits, for tests of eight bytes at a time.
func Word[T string | []byte](s T, i int) uint64 {
	w := s[i : i+8]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// PlainASCII returns the index of the first byte of s, at or after i, that
// a text encoder or decoder may have to look at: a control byte (below
// 0x20), a double quote, a backslash, or a byte of a multi-byte UTF-8
// sequence; len(s) when there is none. The JSON encoder and decoder and the
// consumer's LOAD DATA text copy the runs in between as they are.
//
// It tests eight bytes at a time, which matters for the messages, the longest
// values of a row (BenchmarkPlainASCII).
func PlainASCII[T string | []byte](s T, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(s); i += 8 {
		x := Word(s, i)
		q, b := x^(ones*'"'), x^(ones*'\\')
		// A byte below 0x20, a zero byte of q or b (a quote or a
		// backslash), or a high bit: a borrow only runs on from a byte
		// that already matched, so the test is exact for the word.
		if ((x-ones*0x20)&^x|(q-ones)&^q|(b-ones)&^b|x)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return i
		}
	}
	return len(s)
}
