package schema

import (
	"errors"
	"fmt"
	"strconv"
)

// The generic change event: one row change of any resolved Table, carried
// as the values' canonical text (value.go) rather than typed fields, so one
// codec serves every table. On the wire it is the same envelope as the
// fixed IoT codec's (codec.go): Debezium's payload-only
// {"before","after","source","op","ts_ms"}, the row images encoded as
// Debezium's MySQL connector encodes the SOURCE table's columns (debezium.go)
// under their source names. A topic is the source table's change stream,
// as Debezium's is: transforms, renames and rules belong to the consumer
// (TargetRow), which is what lets Sluice read a Debezium topic and a
// Debezium consumer read Sluice's.

// Change is one change event of a Table. Before and After are the row
// images in Table.Columns order, source side (before any transform), each
// nil when the event has no such image: an insert or read has no Before, a
// delete no After, a truncate neither. A present image has exactly
// len(Table.Columns) values.
//
// ParseChange fills a Change in place and reuses its image slices, so one
// Change per consumer loop decodes a stream with no allocation per record;
// the values' texts live in the buffer the caller hands ParseChange.
type Change struct {
	Op            Op
	Before, After []Value
	Source        Source
	TsMs          int64 // when Sluice (or Debezium) made the event, epoch milliseconds

	vals []Value // the backing of Before and After when ParseChange set them
}

// Image returns the image the change is about: After, or for a delete
// Before; nil for a truncate.
func (c *Change) Image() []Value {
	if c.After != nil {
		return c.After
	}
	return c.Before
}

// checkImages says what is wrong with an op and its images, or "".
func checkImages(op Op, before, after bool) string {
	switch op {
	case OpRead, OpCreate, OpUpdate:
		if !after {
			return fmt.Sprintf("op %q without an after image", op)
		}
	case OpDelete:
		if !before {
			return `op "d" without a before image`
		}
	case OpTruncate:
		// Debezium's truncate: the whole table, so no row image.
		if before || after {
			return `op "t" with a row image`
		}
	default:
		return fmt.Sprintf("unknown op %q", op)
	}
	return ""
}

// AppendChange appends the Kafka record value of c, a change of table t, to
// dst. Its source block is the fixed codec's byte for byte (same fields, same
// order, sluice_epoch only when non-zero). The error names the table, the
// image and the column whose value is not a value of its source type (a
// wrong row handed in), or the op that does not fit the images.
func AppendChange(dst []byte, t *Table, c *Change) ([]byte, error) {
	if why := checkImages(c.Op, c.Before != nil, c.After != nil); why != "" {
		return dst, fmt.Errorf("table %s: %s", t.Source, why)
	}
	dst = append(dst, `{"before":`...)
	dst, err := appendImage(dst, t, c.Before, "before")
	if err != nil {
		return dst, err
	}
	dst = append(dst, `,"after":`...)
	if dst, err = appendImage(dst, t, c.After, "after"); err != nil {
		return dst, err
	}
	dst = append(dst, `,"source":`...)
	dst = appendSourceBlock(dst, &c.Source)
	dst = append(dst, `,"op":`...)
	dst = appendString(dst, string(c.Op))
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, c.TsMs, 10)
	return append(dst, '}'), nil
}

// appendImage appends one row image as Debezium writes it, over the
// table's source columns, or null.
func appendImage(dst []byte, t *Table, vals []Value, which string) ([]byte, error) {
	if vals == nil {
		return append(dst, "null"...), nil
	}
	if len(vals) != len(t.Columns) {
		return dst, fmt.Errorf("table %s: %s: %d values for %d columns", t.Source, which, len(vals), len(t.Columns))
	}
	dst = append(dst, '{')
	var err error
	for i := range t.Columns {
		if i > 0 {
			dst = append(dst, ',')
		}
		c := &t.Columns[i].Source
		dst = appendJSONText(dst, []byte(c.Name))
		dst = append(dst, ':')
		if dst, err = appendDebezium(dst, c, vals[i]); err != nil {
			return dst, fmt.Errorf("table %s: %s: %w", t.Source, which, err)
		}
	}
	return append(dst, '}'), nil
}

// appendSourceBlock writes a change's source block: the one writer of the
// fixed codec (AppendEvent) and the generic one (AppendChange), so the two
// agree on the envelope.
func appendSourceBlock(dst []byte, s *Source) []byte {
	dst = append(dst, `{"connector":`...)
	dst = appendString(dst, s.Connector)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, s.Name)
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, s.TsMs, 10)
	dst = append(dst, `,"db":`...)
	dst = appendString(dst, s.DB)
	dst = append(dst, `,"table":`...)
	dst = appendString(dst, s.Table)
	dst = append(dst, `,"server_id":`...)
	dst = strconv.AppendUint(dst, uint64(s.ServerID), 10)
	if s.GTID != "" {
		dst = append(dst, `,"gtid":`...)
		dst = appendString(dst, s.GTID)
	}
	dst = append(dst, `,"file":`...)
	dst = appendString(dst, s.File)
	dst = append(dst, `,"pos":`...)
	dst = strconv.AppendUint(dst, s.Pos, 10)
	dst = append(dst, `,"row":`...)
	dst = strconv.AppendInt(dst, int64(s.Row), 10)
	if s.Epoch != 0 {
		dst = append(dst, `,"sluice_epoch":`...)
		dst = strconv.AppendUint(dst, uint64(s.Epoch), 10)
	}
	dst = append(dst, `,"snapshot":`...)
	dst = appendString(dst, s.Snapshot)
	return append(dst, '}')
}

// ErrNoKey is a change that has no key: a truncate.
var ErrNoKey = errors.New("change has no row image, so no key")

// AppendChangeKey appends the Kafka record key of c, a change of table t:
// Debezium's key object of t's key columns under their source names, from
// After or, for a delete, Before. Every change of one key therefore lands
// in one partition, in order. A truncate has no key (ErrNoKey).
func AppendChangeKey(dst []byte, t *Table, c *Change) ([]byte, error) {
	img := c.Image()
	if img == nil {
		return dst, fmt.Errorf("table %s: op %q: %w", t.Source, c.Op, ErrNoKey)
	}
	if len(img) != len(t.Columns) {
		return dst, fmt.Errorf("table %s: key: %d values for %d columns", t.Source, len(img), len(t.Columns))
	}
	dst = append(dst, '{')
	var err error
	for n, k := range t.Key {
		if n > 0 {
			dst = append(dst, ',')
		}
		c := &t.Columns[k].Source
		dst = appendJSONText(dst, []byte(c.Name))
		dst = append(dst, ':')
		if dst, err = appendDebezium(dst, c, img[k]); err != nil {
			return dst, fmt.Errorf("table %s: key: %w", t.Source, err)
		}
	}
	return append(dst, '}'), nil
}

// TargetRow computes the row the target keeps from src, a source image of
// t in Columns order: each column's transforms in order, then the column's
// rules on the result. out receives one Value per column, in Columns order
// (the target's names are t.Columns[i].Target.Name). A value no transform
// touches is src's own; a transformed one is appended to dst, so the row
// shares dst as its buffer.
//
// A rule that refuses a value returns its *RuleError (errors.Is ErrRule),
// naming the table, the column and the rule: the consumer dead-letters the
// record. A transform that fails names the table, the column and the
// transform.
func (t *Table) TargetRow(dst []byte, src []Value, out []Value) ([]byte, error) {
	if len(src) != len(t.Columns) || len(out) != len(t.Columns) {
		return dst, fmt.Errorf("table %s: %d values (out %d) for %d columns", t.Source, len(src), len(out), len(t.Columns))
	}
	for i := range t.Columns {
		c := &t.Columns[i]
		v := src[i]
		if len(c.Transforms) > 0 {
			b, null, err := ApplyTransforms(c.Transforms, v.B, v.Null)
			if err != nil {
				return dst, fmt.Errorf("table %s: column %s: %w", t.Source, c.Source.Name, err)
			}
			if null {
				v = Null
			} else {
				start := len(dst)
				dst = append(dst, b...)
				v = Value{B: dst[start:len(dst):len(dst)]}
			}
		}
		for _, r := range c.Rules {
			if err := r.Check(v.B, v.Null); err != nil {
				var re *RuleError
				if errors.As(err, &re) {
					// A hand-built rule may not know its table and column.
					if re.Table == "" {
						re.Table = t.Source.String()
					}
					if re.Column == "" {
						re.Column = c.Source.Name
					}
				}
				return dst, err
			}
		}
		out[i] = v
	}
	return dst, nil
}

// KeyValues returns the key's values of row (a source image or a target row
// of t, in Columns order) in key order, appended to out.
func (t *Table) KeyValues(row []Value, out []Value) []Value {
	for _, k := range t.Key {
		out = append(out, row[k])
	}
	return out
}

// AppendDedupeKey appends to dst a byte string that identifies the key of
// row (a target row of t from TargetRow, in Columns order): two rows get the
// same string exactly when their key values are the same bytes, NULL
// included, so string(key) is a map key for deduplicating a batch. It
// compares bytes, not the target's collation: under a case-insensitive
// collation two keys that differ only in case are one row to the server
// but two here, and the upsert of the batch still lands both, the later
// winning.
func (t *Table) AppendDedupeKey(dst []byte, row []Value) []byte {
	for _, k := range t.Key {
		v := row[k]
		if v.Null {
			dst = append(dst, 0)
			continue
		}
		dst = append(dst, 1)
		dst = strconv.AppendInt(dst, int64(len(v.B)), 10)
		dst = append(dst, ':')
		dst = append(dst, v.B...)
	}
	return dst
}
