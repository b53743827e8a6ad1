package schema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// integerBits is the width of each integer type.
var integerBits = map[string]int{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}

// IsInteger reports whether a column is one of the integer types.
func IsInteger(c Column) bool { _, ok := integerBits[c.DataType]; return ok }

// IsTime reports whether a column is DATE, DATETIME or TIMESTAMP: the
// types a window selects on and a time range bounds.
func IsTime(c Column) bool {
	switch c.DataType {
	case "date", "datetime", "timestamp":
		return true
	}
	return false
}

// textBytes is the size in bytes of each TEXT type, which the server counts
// in bytes whatever the character set.
var textBytes = map[string]int64{"tinytext": 255, "text": 65535, "mediumtext": 16777215, "longtext": 4294967295}

// blobBytes is the size in bytes of each BLOB type.
var blobBytes = map[string]int64{"tinyblob": 255, "blob": 65535, "mediumblob": 16777215, "longblob": 4294967295}

// IsText reports whether a column holds characters: CHAR, VARCHAR or a
// TEXT type.
func IsText(c Column) bool {
	_, text := textBytes[c.DataType]
	return text || c.DataType == "char" || c.DataType == "varchar"
}

// IsBinary reports whether a column holds bytes: BINARY, VARBINARY or a
// BLOB type.
func IsBinary(c Column) bool {
	_, blob := blobBytes[c.DataType]
	return blob || c.DataType == "binary" || c.DataType == "varbinary"
}

// charBytes is the widest character of each character set, in bytes.
var charBytes = map[string]int64{"ascii": 1, "latin1": 1, "binary": 1, "utf8mb3": 3, "utf8": 3, "ucs2": 2, "utf8mb4": 4, "utf16": 4, "utf16le": 4, "utf32": 4}

// maxBytes is the most bytes a value of a character or binary column takes.
func maxBytes(c Column) int64 {
	if n, ok := textBytes[c.DataType]; ok {
		return n
	}
	if n, ok := blobBytes[c.DataType]; ok {
		return n
	}
	if IsBinary(c) {
		return c.Length
	}
	w, ok := charBytes[c.Charset]
	if !ok {
		w = 4
	}
	return c.Length * w
}

// maxChars is the most characters a value of a character column holds.
func maxChars(c Column) int64 {
	if n, ok := textBytes[c.DataType]; ok {
		return n // one byte each at the least
	}
	return c.Length
}

// unicodeSets hold every character; bmpSets every character of the Basic
// Multilingual Plane.
var (
	unicodeSets = []string{"utf8mb4", "utf16", "utf16le", "utf32"}
	bmpSets     = []string{"utf8mb3", "utf8", "ucs2"}
)

// charsetHolds reports whether every character of character set s has one
// in character set t.
func charsetHolds(t, s string) bool {
	switch {
	case t == s || s == "ascii" || slices.Contains(unicodeSets, t):
		return true
	case slices.Contains(bmpSets, t):
		return slices.Contains(bmpSets, s) || s == "latin1"
	}
	return false
}

// decimalDigits is how many decimal digits an integer type's values take.
func decimalDigits(c Column) int {
	switch integerBits[c.DataType] {
	case 8:
		return 3
	case 16:
		return 5
	case 24:
		if c.Unsigned {
			return 8
		}
		return 7
	case 32:
		return 10
	}
	if c.Unsigned {
		return 20
	}
	return 19
}

// canHold returns "" when every value of column s can be stored in column t
// unchanged, byte for byte in its text form, and otherwise why not. Types
// of different families (a string into an integer) never hold each other:
// Sluice copies, it does not convert.
func canHold(t, s Column) string {
	switch {
	case IsInteger(s) && IsInteger(t):
		sb, tb := integerBits[s.DataType], integerBits[t.DataType]
		switch {
		case !s.Unsigned && t.Unsigned:
			return "an unsigned column cannot hold the source's negative values"
		case s.Unsigned && !t.Unsigned && tb <= sb:
			return fmt.Sprintf("a signed %d-bit column cannot hold the unsigned %d-bit source's values above %d", tb, sb, uint64(1)<<(tb-1)-1)
		case tb < sb:
			return fmt.Sprintf("a %d-bit integer cannot hold the source's %d-bit values", tb, sb)
		}
		return ""
	case IsInteger(s) && t.DataType == "decimal":
		if !s.Unsigned && t.Unsigned {
			return "an unsigned column cannot hold the source's negative values"
		}
		if d := decimalDigits(s); t.Precision-t.Scale < d {
			return fmt.Sprintf("%d integer digits cannot hold the source's %d", t.Precision-t.Scale, d)
		}
		return ""
	case s.DataType == "decimal" && t.DataType == "decimal":
		switch {
		case !s.Unsigned && t.Unsigned:
			return "an unsigned column cannot hold the source's negative values"
		case t.Scale < s.Scale:
			return fmt.Sprintf("%d decimal places cannot hold the source's %d", t.Scale, s.Scale)
		case t.Precision-t.Scale < s.Precision-s.Scale:
			return fmt.Sprintf("%d integer digits cannot hold the source's %d", t.Precision-t.Scale, s.Precision-s.Scale)
		}
		return ""
	case (s.DataType == "float" || s.DataType == "double") && (t.DataType == "float" || t.DataType == "double"):
		if s.DataType == "double" && t.DataType == "float" {
			return "FLOAT cannot hold the source's DOUBLE precision"
		}
		if !s.Unsigned && t.Unsigned {
			return "an unsigned column cannot hold the source's negative values"
		}
		return ""
	case IsText(s) && IsText(t):
		return textHolds(t, s)
	case IsBinary(s) && IsBinary(t):
		return binaryHolds(t, s)
	case IsText(s) && IsBinary(t):
		if t.DataType == "binary" {
			return "BINARY pads shorter values with zero bytes"
		}
		if tb, sb := maxBytes(t), maxBytes(s); tb < sb {
			return fmt.Sprintf("%d bytes cannot hold the source's %d", tb, sb)
		}
		return ""
	case s.DataType == "enum" || s.DataType == "set":
		if t.DataType == s.DataType {
			for _, e := range s.Elements {
				if !slices.Contains(t.Elements, e) {
					return fmt.Sprintf("the target lacks the source's member %q", e)
				}
			}
			return ""
		}
		if IsText(t) && t.DataType != "char" {
			longest := int64(0)
			for _, e := range s.Elements {
				longest = max(longest, int64(utf8.RuneCountInString(e)))
			}
			if s.DataType == "set" { // every member, comma-separated
				longest = int64(utf8.RuneCountInString(strings.Join(s.Elements, ",")))
			}
			if maxChars(t) < longest {
				return fmt.Sprintf("%d characters cannot hold the source's longest value, %d", maxChars(t), longest)
			}
			if !charsetHolds(t.Charset, s.Charset) {
				return fmt.Sprintf("character set %s cannot hold the source's %s", t.Charset, s.Charset)
			}
			return ""
		}
	case s.DataType == t.DataType && (s.DataType == "datetime" || s.DataType == "timestamp" || s.DataType == "time"):
		if t.Precision < s.Precision {
			return fmt.Sprintf("%d fractional digits cannot hold the source's %d", t.Precision, s.Precision)
		}
		return ""
	case s.DataType == "timestamp" && t.DataType == "datetime":
		if t.Precision < s.Precision {
			return fmt.Sprintf("%d fractional digits cannot hold the source's %d", t.Precision, s.Precision)
		}
		return ""
	case s.DataType == "bit" && t.DataType == "bit":
		if t.Precision < s.Precision {
			return fmt.Sprintf("%d bits cannot hold the source's %d", t.Precision, s.Precision)
		}
		return ""
	case s.DataType == t.DataType && strings.EqualFold(s.ColumnType, t.ColumnType):
		return "" // date, year, json, MariaDB's uuid and inet types, …
	}
	return "the types differ: Sluice copies values, it does not convert them"
}

// sameBytes reports whether text in character set s keeps its bytes in
// character set t (ASCII in any ASCII-compatible set, utf8mb3 in utf8mb4).
func sameBytes(t, s string) bool {
	switch {
	case t == s:
		return true
	case s == "ascii":
		return t == "latin1" || t == "utf8mb3" || t == "utf8" || t == "utf8mb4"
	case s == "utf8mb3" || s == "utf8":
		return t == "utf8mb4" || t == "utf8mb3" || t == "utf8"
	}
	return false
}

// textHolds is canHold for two character columns.
func textHolds(t, s Column) string {
	if !charsetHolds(t.Charset, s.Charset) {
		return fmt.Sprintf("character set %s cannot hold the source's %s", t.Charset, s.Charset)
	}
	if t.DataType == "char" && s.DataType != "char" {
		return "CHAR drops the trailing spaces of the source's values"
	}
	_, tText := textBytes[t.DataType]
	_, sText := textBytes[s.DataType]
	switch {
	case tText: // counted in bytes: the source's longest value, in the target's encoding
		w, ok := charBytes[t.Charset]
		if !ok {
			w = 4
		}
		need := maxChars(s) * w
		if sameBytes(t.Charset, s.Charset) {
			need = min(need, maxBytes(s))
		}
		if tb := maxBytes(t); tb < need {
			return fmt.Sprintf("%d bytes cannot hold the source's %d (in %s)", tb, need, t.Charset)
		}
	default: // counted in characters
		if tc, sc := maxChars(t), maxChars(s); tc < sc {
			unit := "characters"
			if sText {
				unit = "bytes (as many characters at most)"
			}
			return fmt.Sprintf("%d characters cannot hold the source's %d %s", tc, sc, unit)
		}
	}
	return ""
}

// binaryHolds is canHold for two binary columns.
func binaryHolds(t, s Column) string {
	if t.DataType == "binary" {
		if s.DataType != "binary" || t.Length != s.Length {
			return "BINARY pads shorter values with zero bytes: only a BINARY of the same length is copied exactly"
		}
		return ""
	}
	if tb, sb := maxBytes(t), maxBytes(s); tb < sb {
		return fmt.Sprintf("%d bytes cannot hold the source's %d", tb, sb)
	}
	return ""
}

// constantFits returns "" when the constant v can be stored in column t,
// and otherwise why not. It checks the types whose values are easy to read
// from their text form; others the server checks on the first write.
func constantFits(t Column, v string) string {
	switch {
	case IsInteger(t):
		bits := integerBits[t.DataType]
		var err error
		if t.Unsigned {
			_, err = strconv.ParseUint(v, 10, bits)
		} else {
			_, err = strconv.ParseInt(v, 10, bits)
		}
		if err != nil {
			return fmt.Sprintf("%q is not a value of %s", v, t.ColumnType)
		}
	case IsText(t):
		if n := int64(utf8.RuneCountInString(v)); n > maxChars(t) || (textBytes[t.DataType] > 0 && int64(len(v)) > maxBytes(t)) {
			return fmt.Sprintf("%q is longer than %s holds", v, t.ColumnType)
		}
	case IsBinary(t):
		if int64(len(v)) > maxBytes(t) {
			return fmt.Sprintf("%q is longer than %s holds", v, t.ColumnType)
		}
	case IsTime(t):
		if _, ok := parseDateTimeText([]byte(v)); !ok {
			return fmt.Sprintf("%q is not a value of %s", v, t.ColumnType)
		}
	case t.DataType == "enum":
		if !slices.Contains(t.Elements, v) {
			return fmt.Sprintf("%q is not a member of %s", v, t.ColumnType)
		}
	}
	return ""
}
