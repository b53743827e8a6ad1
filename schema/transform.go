package schema

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// The transforms a table's configuration may name, per column, in order.
const (
	TransformUpper    = "upper"    // upper-case, Unicode-aware, as strings.ToUpper
	TransformLower    = "lower"    // lower-case, Unicode-aware
	TransformTrim     = "trim"     // drop leading and trailing Unicode white space
	TransformHash     = "hash"     // HMAC-SHA-256 of the value under a secret key, 64 lower-case hex digits
	TransformMask     = "mask"     // replace every character but the last Keep with '*'
	TransformNull     = "null"     // NULL, whatever the value
	TransformConstant = "constant" // one fixed value, whatever the value (NULL included)
)

// TransformSpec is one transform as configured: its name and the argument
// the name takes.
type TransformSpec struct {
	Name string
	// Keep is mask's count of trailing characters left as they are.
	Keep int
	// Value is constant's value, in the column's canonical text form.
	Value string
	// Key is hash's HMAC key: a secret, never printed or logged.
	Key []byte
	// KeyName says where Key came from (the variable or file that held it),
	// for the plan `sluice check` prints and for errors.
	KeyName string
}

// String describes the transform for plans and errors; it never includes a
// hash key.
func (s TransformSpec) String() string {
	switch s.Name {
	case TransformMask:
		return fmt.Sprintf("mask(keep %d)", s.Keep)
	case TransformConstant:
		return fmt.Sprintf("constant(%q)", s.Value)
	case TransformHash:
		return fmt.Sprintf("hash(key %s)", s.KeyName)
	}
	return s.Name
}

// A Transform changes one column's value on its way to the target. Values
// are the column's canonical MySQL text form, v, with null set for SQL
// NULL (v is then ignored). Apply never modifies v in place: it returns
// either v itself, unchanged, or a new slice. A NULL stays NULL through
// every transform but constant.
type Transform struct {
	Spec  TransformSpec
	apply func(v []byte, null bool) ([]byte, bool, error)
}

// Apply transforms one value.
func (t Transform) Apply(v []byte, null bool) ([]byte, bool, error) { return t.apply(v, null) }

// String describes the transform as its spec does.
func (t Transform) String() string { return t.Spec.String() }

// NewTransform builds the transform a spec describes, or says what is wrong
// with the spec (an unknown name, a negative keep, an empty hash key).
func NewTransform(s TransformSpec) (Transform, error) {
	t := Transform{Spec: s}
	switch s.Name {
	case TransformUpper:
		t.apply = textOnly(upperBytes)
	case TransformLower:
		t.apply = textOnly(bytes.ToLower)
	case TransformTrim:
		t.apply = textOnly(bytes.TrimSpace)
	case TransformMask:
		if s.Keep < 0 {
			return t, fmt.Errorf("mask: keep %d: must not be negative", s.Keep)
		}
		keep := s.Keep
		t.apply = textOnly(func(v []byte) []byte { return mask(v, keep) })
	case TransformHash:
		if len(s.Key) == 0 {
			return t, fmt.Errorf("hash: the key (%s) is empty", s.KeyName)
		}
		key := bytes.Clone(s.Key)
		t.apply = textOnly(func(v []byte) []byte { return hmacHex(key, v) })
	case TransformNull:
		t.apply = func([]byte, bool) ([]byte, bool, error) { return nil, true, nil }
	case TransformConstant:
		val := []byte(s.Value)
		t.apply = func([]byte, bool) ([]byte, bool, error) { return val, false, nil }
	default:
		return t, fmt.Errorf("unknown transform %q (use upper, lower, trim, hash, mask, null or constant)", s.Name)
	}
	return t, nil
}

// textOnly lifts a function of a non-NULL value into a transform that
// leaves NULL as it is.
func textOnly(f func([]byte) []byte) func([]byte, bool) ([]byte, bool, error) {
	return func(v []byte, null bool) ([]byte, bool, error) {
		if null {
			return nil, true, nil
		}
		return f(v), false, nil
	}
}

// mask keeps the last keep characters of v and replaces each character
// before them with '*', so the value keeps its length in characters. A byte
// that is not valid UTF-8 counts as one character.
func mask(v []byte, keep int) []byte {
	n := utf8.RuneCount(v)
	if n <= keep {
		return v
	}
	// find where the kept tail starts: skip n-keep characters
	i := 0
	for range n - keep {
		_, w := utf8.DecodeRune(v[i:])
		i += w
	}
	out := make([]byte, 0, n-keep+len(v)-i)
	out = append(out, bytes.Repeat([]byte{'*'}, n-keep)...)
	return append(out, v[i:]...)
}

// hmacHex is HMAC-SHA-256(key, v) in lower-case hex.
func hmacHex(key, v []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(v)
	var sum [sha256.Size]byte
	out := make([]byte, hex.EncodedLen(sha256.Size))
	hex.Encode(out, m.Sum(sum[:0]))
	return out
}

// ApplyTransforms runs ts in order over one value.
func ApplyTransforms(ts []Transform, v []byte, null bool) ([]byte, bool, error) {
	for _, t := range ts {
		var err error
		if v, null, err = t.apply(v, null); err != nil {
			return nil, false, fmt.Errorf("transform %s: %w", t.Spec, err)
		}
	}
	return v, null, nil
}
