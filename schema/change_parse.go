package schema

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	json "github.com/go-json-experiment/json"
)

// ParseChange reads a record value of table t into c: one Sluice writes
// (AppendChange, or the fixed codec's AppendEvent for its table), or one
// Debezium's MySQL connector writes through the JSON converter, payload
// only or wrapped in {"schema":…,"payload":…}. Fields it does not know
// (the schema, Debezium's transaction block, ts_us, extra source fields)
// are skipped; source.snapshot may be a string or a boolean; op is r, c, u,
// d or t. Row members that are not columns of t are skipped (the source's
// dropped columns, as Debezium writes every column); a column of t that
// has no member is an error.
//
// The values' texts are appended to dst, which is returned; c's images
// alias it, so the caller may reuse dst for the next record only once it is
// done with c. c's image slices are reused from call to call.
//
// Every error wraps ErrMalformed and names the field or column at fault; a
// record whose source.db and source.table are not t's source table is an
// error naming both tables.
func ParseChange(dst []byte, t *Table, value []byte, c *Change) ([]byte, error) {
	return parseChange(dst, t, value, c, nil)
}

// A ChangeDecoder parses record values as ParseChange does, faster for a
// stream of them: it keeps the last source block it parsed and, when the
// next record's block is the same bytes (the records of one backfill chunk
// or one binlog event), takes that parse again. It is not safe for
// concurrent use; the zero value is ready.
type ChangeDecoder struct {
	src    []byte // the last source object parsed
	parsed Source // what src parsed to
}

// Parse is ParseChange with the decoder's cache.
func (d *ChangeDecoder) Parse(dst []byte, t *Table, value []byte, c *Change) ([]byte, error) {
	return parseChange(dst, t, value, c, d)
}

func parseChange(dst []byte, t *Table, value []byte, c *Change, dec *ChangeDecoder) ([]byte, error) {
	n := len(t.Columns)
	if cap(c.vals) < 2*n {
		c.vals = make([]Value, 2*n)
	}
	c.vals = c.vals[:2*n]
	env := envelope{t: t, dst: dst, vals: c.vals, dec: dec}
	if err := env.scan(value, true); err != nil {
		return dst, fmt.Errorf("%w: table %s: %w", ErrMalformed, t.Source, err)
	}
	if env.op == nil && env.payload != nil && string(env.payload) != "null" {
		p := envelope{t: t, dst: dst, vals: c.vals, dec: dec}
		if err := p.scan(env.payload, false); err != nil {
			return dst, fmt.Errorf("%w: table %s: payload: %w", ErrMalformed, t.Source, err)
		}
		env = p
	}
	if err := env.decode(c); err != nil {
		return dst, fmt.Errorf("%w: table %s: %w", ErrMalformed, t.Source, err)
	}
	return env.dst, nil
}

// envelope is one record as it is scanned: the raw JSON of the envelope
// fields read afterwards (nil: absent), and the source and row images,
// parsed as the scan meets them so that their bytes are read once.
type envelope struct {
	op, tsMs, payload []byte
	seen              uint8 // the known fields met, to refuse repeats
	src               Source
	hasSource         bool // false: absent or null
	dec               *ChangeDecoder

	t             *Table
	dst           []byte  // the values' texts are appended here
	vals          []Value // 2×len(t.Columns): before's, then after's
	before, after []Value // nil: absent or null
}

// The known envelope fields, as bits of envelope.seen.
const (
	fBefore = 1 << iota
	fAfter
	fSource
	fOp
	fTsMs
	fPayload
)

// scan reads the envelope's fields from one JSON object; top allows the
// converter's payload wrapper. A known field given twice is an error (the
// two parses would disagree on which wins).
func (e *envelope) scan(b []byte, top bool) error {
	s := jsonScan{b: b}
	if !s.open() {
		return errors.New("not a JSON object")
	}
	for first := true; ; first = false {
		key, done, err := s.key(first)
		if err != nil {
			return err
		}
		if done {
			break
		}
		var bit uint8
		var slot *[]byte
		switch string(key) {
		case "before":
			bit = fBefore
		case "after":
			bit = fAfter
		case "source":
			bit = fSource
		case "op":
			bit, slot = fOp, &e.op
		case "ts_ms":
			bit, slot = fTsMs, &e.tsMs
		case "payload":
			if top {
				bit, slot = fPayload, &e.payload
			}
		}
		if bit != 0 && e.seen&bit != 0 {
			return fmt.Errorf("field %s is repeated", key)
		}
		e.seen |= bit
		switch {
		case bit == fBefore:
			e.before, err = e.row(&s, 0, "before")
		case bit == fAfter:
			e.after, err = e.row(&s, 1, "after")
		case bit == fSource:
			err = e.source(&s)
		default:
			var val []byte
			if val, err = s.value(); err != nil {
				err = fmt.Errorf("field %s: %w", key, err)
			} else if slot != nil {
				*slot = val
			}
		}
		if err != nil {
			return err
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return fmt.Errorf("data after the object at offset %d", s.i)
	}
	return nil
}

// row parses a row image at the cursor into half (0 before, 1 after) of
// e.vals: nil for JSON null. Members that are not columns of the table are
// skipped; a column with no member is an error naming it.
func (e *envelope) row(s *jsonScan, half int, which string) ([]Value, error) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		raw, err := s.value()
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", which, err)
		}
		if string(raw) == "null" {
			return nil, nil
		}
		return nil, fmt.Errorf("field %s: not a JSON object: %s", which, clip(raw))
	}
	s.i++
	cols := e.t.Columns
	n := len(cols)
	out := e.vals[half*n : half*n+n : half*n+n]
	for i := range out {
		out[i] = Value{}
	}
	var seen uint64 // columns 0–63; wider tables also keep found
	var found []bool
	if n > 64 {
		found = make([]bool, n)
	}
	next := 0
	for first := true; ; first = false {
		key, done, err := s.key(first)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", which, err)
		}
		if done {
			break
		}
		val, err := s.value()
		if err != nil {
			return nil, fmt.Errorf("field %s: column %s: %w", which, key, err)
		}
		i := -1
		if next < n && cols[next].Source.Name == string(key) {
			i = next
		} else {
			for k := range cols {
				if cols[k].Source.Name == string(key) {
					i = k
					break
				}
			}
		}
		if i < 0 {
			continue // a column that does not travel, or one Sluice does not know
		}
		if (i < 64 && seen&(1<<i) != 0) || (i >= 64 && found[i]) {
			return nil, fmt.Errorf("field %s: column %s is repeated", which, key)
		}
		next = i + 1
		if e.dst, out[i], err = appendParseDebezium(e.dst, &cols[i].Source, val); err != nil {
			return nil, fmt.Errorf("field %s: %w", which, err)
		}
		if i < 64 {
			seen |= 1 << i
		} else {
			found[i] = true
		}
	}
	for i := range out {
		if (i < 64 && seen&(1<<i) == 0) || (i >= 64 && !found[i]) {
			return nil, fmt.Errorf("field %s: column %s is missing", which, cols[i].Source.Name)
		}
	}
	return out, nil
}

func (e *envelope) decode(c *Change) error {
	t := e.t
	if e.op == nil {
		return errors.New("field op is missing")
	}
	op, err := unquoted(e.op)
	if err != nil {
		return fmt.Errorf("field op: %s: %w", clip(e.op), err)
	}
	c.Op = internOp(op)
	c.TsMs = 0
	if e.tsMs != nil && string(e.tsMs) != "null" {
		if c.TsMs, err = strconv.ParseInt(string(e.tsMs), 10, 64); err != nil || !isInteger(e.tsMs) {
			return fmt.Errorf("field ts_ms: %s is not an integer", clip(e.tsMs))
		}
	}
	if !e.hasSource {
		return errors.New("field source is missing")
	}
	c.Source = e.src
	// A record whose source names no database or no table is a change of
	// the table whose topic it is on, as the flag-only consumer took it;
	// one that names another table is refused.
	if (c.Source.DB != "" && c.Source.DB != t.Source.DB) || (c.Source.Table != "" && c.Source.Table != t.Source.Table) {
		return fmt.Errorf("source: the record is a change of table %s.%s, not of table %s", c.Source.DB, c.Source.Table, t.Source)
	}
	if c.Source.DB == "" {
		c.Source.DB = t.Source.DB
	}
	if c.Source.Table == "" {
		c.Source.Table = t.Source.Table
	}
	c.Before, c.After = e.before, e.after
	if why := checkImages(c.Op, c.Before != nil, c.After != nil); why != "" {
		return errors.New(why)
	}
	return nil
}

// clip shortens raw JSON for an error message.
func clip(raw []byte) []byte {
	if len(raw) > 80 {
		return append(raw[:77:77], "..."...)
	}
	return raw
}

// source reads the source block at the cursor into e.src: the
// ChangeDecoder's last parse when the block is the same bytes, else the fast
// decoder's parse of the block Sluice writes, else one pass of json/v2 (a
// Debezium block, with fields Sluice does not know).
func (e *envelope) source(s *jsonScan) error {
	s.ws()
	start := s.i
	dec := e.dec
	if dec != nil && len(dec.src) > 0 && bytes.HasPrefix(s.b[s.i:], dec.src) {
		// An object's parse depends on nothing but its own bytes.
		s.i += len(dec.src)
		e.src, e.hasSource = dec.parsed, true
		return nil
	}
	// Only the fallback's wireSource is handed to json/v2 (which makes it
	// escape to the heap); the fast path's stays on the stack.
	var fast wireSource
	ws := &fast
	d := fastDecoder{b: s.b, i: s.i}
	if d.source(ws) {
		s.i = d.i
	} else {
		raw, err := s.value()
		if err != nil {
			return fmt.Errorf("field source: %w", err)
		}
		if string(raw) == "null" {
			return nil
		}
		slow := new(wireSource)
		if err := json.Unmarshal(raw, slow); err != nil {
			return fmt.Errorf("field source: %w", err)
		}
		ws = slow
	}
	if err := sourceFromWire(ws, &e.src); err != nil {
		return err
	}
	e.hasSource = true
	if dec != nil {
		dec.src = append(dec.src[:0], s.b[start:s.i]...)
		dec.parsed = e.src
	}
	return nil
}

// sourceFromWire reads a parsed source block into s.
func sourceFromWire(ws *wireSource, s *Source) error {
	*s = Source{
		Connector: ws.Connector, Name: ws.Name, TsMs: ws.TsMs, DB: ws.DB, Table: ws.Table,
		ServerID: ws.ServerID, File: ws.File, Pos: ws.Pos, Row: ws.Row, Epoch: ws.Epoch,
	}
	if ws.GTID != nil {
		s.GTID = *ws.GTID
	}
	switch string(bytes.TrimSpace(ws.Snapshot)) {
	case "", "null", "false", `"false"`:
		s.Snapshot = "false"
	case "true", `"true"`:
		s.Snapshot = "true"
	default:
		snap, err := unquoted(bytes.TrimSpace(ws.Snapshot))
		if err != nil {
			return fmt.Errorf("field source.snapshot: %s: %w", clip(ws.Snapshot), err)
		}
		s.Snapshot = string(snap) // Debezium's "last", "first_in_data_collection", …
	}
	return nil
}

// jsonScan walks the members of one JSON object whose values may be
// anything, returning each value's raw text: the envelope, where the
// converter's schema and Debezium's transaction block nest. Skipped values
// are checked only for their structure (strings closed, brackets matched),
// not validated; the values Sluice reads are parsed strictly where they are
// read.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

func (s *jsonScan) open() bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '{' {
		s.i++
		return true
	}
	return false
}

// key moves to the next member of an object whose '{' is consumed and
// returns its key (raw, as the envelope's keys are plain ASCII), the cursor
// on its value; or done at the closing brace.
func (s *jsonScan) key(first bool) (key []byte, done bool, err error) {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil, true, nil
	}
	if !first {
		if s.i >= len(s.b) || s.b[s.i] != ',' {
			return nil, false, fmt.Errorf("expected , or } at offset %d", s.i)
		}
		s.i++
		s.ws()
	}
	start := s.i
	if !s.str() {
		return nil, false, fmt.Errorf("expected a member name at offset %d", start)
	}
	key = s.b[start+1 : s.i-1]
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, false, fmt.Errorf("expected : after %q at offset %d", key, s.i)
	}
	s.i++
	return key, false, nil
}

// value moves past the value at the cursor and returns its raw text.
func (s *jsonScan) value() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// str moves past the string at the cursor.
func (s *jsonScan) str() bool {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	s.i++
	for s.i < len(s.b) {
		s.i = PlainASCII(s.b, s.i)
		if s.i >= len(s.b) {
			break
		}
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return false
		default:
			s.i++
		}
	}
	s.i = len(s.b)
	return false
}

// maxDepth bounds the nesting skip follows (the converter's schema nests
// four deep).
const maxDepth = 64

// skip moves past one JSON value.
func (s *jsonScan) skip() error {
	var stack [maxDepth]byte
	depth := 0
	for {
		s.ws()
		if s.i >= len(s.b) {
			return errors.New("unexpected end of the record")
		}
		switch c := s.b[s.i]; c {
		case '"':
			if !s.str() {
				return fmt.Errorf("bad string at offset %d", s.i)
			}
		case '{', '[':
			if depth == maxDepth {
				return fmt.Errorf("nested more than %d deep at offset %d", maxDepth, s.i)
			}
			stack[depth] = c + 2 // '{'+2 is '}', '['+2 is ']'
			depth++
			s.i++
			continue
		case '}', ']':
			if depth == 0 || stack[depth-1] != c {
				return fmt.Errorf("unexpected %c at offset %d", c, s.i)
			}
			depth--
			s.i++
		case ',', ':':
			if depth == 0 {
				return fmt.Errorf("no value at offset %d", s.i)
			}
			s.i++
			continue
		default:
			start := s.i
			for s.i < len(s.b) && !isSpace(s.b[s.i]) && !isDelim(s.b[s.i]) {
				s.i++
			}
			if s.i == start {
				return fmt.Errorf("no value at offset %d", s.i)
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// isDelim reports whether c ends a number or literal.
func isDelim(c byte) bool {
	switch c {
	case ',', ':', '{', '}', '[', ']', '"':
		return true
	}
	return false
}
