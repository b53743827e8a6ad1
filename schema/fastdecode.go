package schema

import (
	"sync/atomic"
	"unicode/utf16"
	"unicode/utf8"
)

// fastDecoder parses the source block Sluice itself writes (any key
// order, any JSON whitespace) without reflection (fastDecoder.source). It
// reports false, having decided nothing, for anything it does not handle
// exactly as the json/v2 path would: unknown or repeated keys (a Debezium
// source block's extra fields), nulls where a value is required,
// non-integer or overflowing numbers, invalid UTF-8 or escapes. The caller
// (envelope.source) then takes the json/v2 path, so the fast path changes
// speed, never results.
type fastDecoder struct {
	b []byte
	i int
}

func (d *fastDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c.
func (d *fastDecoder) next(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// null consumes a JSON null if one comes next.
func (d *fastDecoder) null() bool {
	d.ws()
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// member moves to the next key of an object whose '{' is consumed: it
// returns the key, or done at the closing '}'. Callers check repeats with a
// bit per known key.
func (d *fastDecoder) member(first bool) (key []byte, done, ok bool) {
	if d.next('}') {
		return nil, true, true
	}
	if !first && !d.next(',') {
		return nil, false, false
	}
	if key, ok = d.rawKey(); !ok || !d.next(':') {
		return nil, false, false
	}
	return key, false, true
}

// mark records a key's bit, refusing unknown (0) and repeated keys.
func mark(seen *uint32, bit uint32) bool {
	if bit == 0 || *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// rawKey returns an object key made only of plain ASCII (all of ours).
func (d *fastDecoder) rawKey() ([]byte, bool) {
	if !d.next('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			return d.b[start : d.i-1], true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// str parses a JSON string.
func (d *fastDecoder) str() (string, bool) {
	raw, ok := d.strBytes()
	return string(raw), ok
}

// strBytes parses a JSON string; the result may alias the input.
func (d *fastDecoder) strBytes() ([]byte, bool) {
	if !d.next('"') {
		return nil, false
	}
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		if d.i = PlainASCII(d.b, d.i); d.i == len(d.b) {
			break
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			s := d.b[start : d.i-1]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return nil, false
}

// escaped finishes a string that holds escapes, from its start.
func (d *fastDecoder) escaped(start int) ([]byte, bool) {
	if !utf8.Valid(d.b[start:d.i]) {
		return nil, false
	}
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return out, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			j := d.i
			for j < len(d.b) && d.b[j] != '"' && d.b[j] != '\\' && d.b[j] >= 0x20 {
				j++
			}
			if !utf8.Valid(d.b[d.i:j]) {
				return nil, false
			}
			out = append(out, d.b[d.i:j]...)
			d.i = j
			continue
		}
		if d.i+1 >= len(d.b) {
			return nil, false
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				if d.i+1 >= len(d.b) || d.b[d.i] != '\\' || d.b[d.i+1] != 'u' {
					return nil, false
				}
				d.i += 2
				r2, ok := d.hex4()
				if !ok {
					return nil, false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, false
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
	}
	return nil, false
}

func (d *fastDecoder) hex4() (rune, bool) {
	r, ok := hex4At(d.b, d.i)
	if ok {
		d.i += 4
	}
	return r, ok
}

// uint parses a JSON integer that fits max.
func (d *fastDecoder) uint(max uint64) (uint64, bool) {
	d.ws()
	return d.digits(max)
}

// digits parses the digits of a JSON integer, with no white space before.
func (d *fastDecoder) digits(max uint64) (uint64, bool) {
	start := d.i
	var n uint64
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		digit := uint64(d.b[d.i] - '0')
		if n > (max-digit)/10 {
			return 0, false
		}
		n = n*10 + digit
		d.i++
	}
	digits := d.i - start
	if digits == 0 || (digits > 1 && d.b[start] == '0') {
		return 0, false
	}
	if d.i < len(d.b) { // a fraction or exponent: not an integer
		if c := d.b[d.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return n, true
}

// int parses a JSON integer that fits an int64.
func (d *fastDecoder) int() (int64, bool) {
	d.ws()
	neg := d.i < len(d.b) && d.b[d.i] == '-'
	limit := uint64(1<<63 - 1)
	if neg {
		d.i++
		limit = 1 << 63
	}
	n, ok := d.digits(limit)
	if !ok || (neg && n == 0) { // -0: leave it to the full decoder
		return 0, false
	}
	if neg {
		return -int64(n-1) - 1, true
	}
	return int64(n), true
}

// literal consumes true or false, returning its raw text.
func (d *fastDecoder) literal() ([]byte, bool) {
	d.ws()
	rest := d.b[d.i:]
	n := 0
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		n = 4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		n = 5
	default:
		return nil, false
	}
	d.i += n
	return rest[:n], true
}

func internOp(b []byte) Op {
	switch string(b) {
	case "r":
		return OpRead
	case "c":
		return OpCreate
	case "u":
		return OpUpdate
	case "d":
		return OpDelete
	case "t":
		return OpTruncate
	}
	return Op(b)
}

// The slots of sourceStrings, one per source string field.
const (
	slotConnector = iota
	slotName
	slotDB
	slotTable
	slotFile
	sourceSlots
)

// sourceStrings holds the last value of each source string field that
// sharedStr reads, for all decoders: a record's connector, name, database,
// table and binlog file are nearly always those of the record before it.
var sourceStrings [sourceSlots]atomic.Pointer[string]

// sharedStr parses a string that is likely the same as the last one in its
// slot of sourceStrings, and returns that one instead of a copy when it is
// (it saved 5 of 14 allocations a record).
func (d *fastDecoder) sharedStr(slot int) (string, bool) {
	raw, ok := d.strBytes()
	if !ok {
		return "", false
	}
	last := &sourceStrings[slot]
	if p := last.Load(); p != nil && *p == string(raw) {
		return *p, true
	}
	v := string(raw)
	last.Store(&v)
	return v, true
}

func (d *fastDecoder) source(s *wireSource) bool {
	if !d.next('{') {
		return false
	}
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		var bit uint32
		var n uint64
		switch string(key) {
		case "connector":
			bit = 1 << 0
			s.Connector, ok = d.sharedStr(slotConnector)
		case "name":
			bit = 1 << 1
			s.Name, ok = d.sharedStr(slotName)
		case "ts_ms":
			bit = 1 << 2
			s.TsMs, ok = d.int()
		case "snapshot":
			bit = 1 << 3
			d.ws()
			start := d.i
			switch {
			case d.null():
			case d.i < len(d.b) && d.b[d.i] == '"':
				_, ok = d.strBytes()
			default:
				_, ok = d.literal()
			}
			s.Snapshot = d.b[start:d.i]
		case "db":
			bit = 1 << 4
			s.DB, ok = d.sharedStr(slotDB)
		case "table":
			bit = 1 << 5
			s.Table, ok = d.sharedStr(slotTable)
		case "server_id":
			bit = 1 << 6
			n, ok = d.uint(1<<32 - 1)
			s.ServerID = uint32(n)
		case "gtid":
			bit = 1 << 7
			if d.null() {
				s.GTID = nil
			} else {
				var g string
				g, ok = d.str()
				s.GTID = &g
			}
		case "file":
			bit = 1 << 8
			s.File, ok = d.sharedStr(slotFile)
		case "pos":
			bit = 1 << 9
			s.Pos, ok = d.uint(1<<64 - 1)
		case "row":
			bit = 1 << 10
			var r int64
			r, ok = d.int()
			s.Row = int(r)
		case "sluice_epoch":
			bit = 1 << 11
			n, ok = d.uint(1<<16 - 1)
			s.Epoch = uint16(n)
		}
		if !ok || !mark(&seen, bit) {
			return false
		}
	}
}
