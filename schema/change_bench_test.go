package schema

import (
	"bytes"
	"testing"
)

// The generic codec against the fixed IoT codec on the same row and the
// same bytes (benchEvent), so the cost of being table-driven shows as a
// ratio from one run:
//
//	go test -run '^$' -bench 'Change' -benchmem ./schema/

func BenchmarkChangeEncode(b *testing.B) {
	e := benchEvent()
	tb := iotTable()
	c := changeOf(e, true)
	fixed := AppendEvent(nil, e)
	if got, err := AppendChange(nil, tb, c); err != nil || !bytes.Equal(got, fixed) {
		b.Fatalf("the two codecs disagree (%v):\n%s\n%s", err, got, fixed)
	}
	b.Run("fixed", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(fixed)))
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = AppendEvent(buf[:0], e)
			buf = AppendKey(buf, e.Key())
		}
	})
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(fixed)))
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = AppendChange(buf[:0], tb, c); err != nil {
				b.Fatal(err)
			}
			if buf, err = AppendChangeKey(buf, tb, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkChangeDecode(b *testing.B) {
	e := benchEvent()
	v := AppendEvent(nil, e)
	b.Run("generic", func(b *testing.B) {
		tb := iotTable()
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		var c Change
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = ParseChange(buf[:0], tb, v, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generic_ChangeDecoder", func(b *testing.B) {
		tb := iotTable()
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		var c Change
		var dec ChangeDecoder
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = dec.Parse(buf[:0], tb, v, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generic_target_row", func(b *testing.B) { // the example's table: id dropped, message upper-cased, two rules
		tb := iotExampleTable(&testing.T{})
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		var c Change
		var dec ChangeDecoder
		out := make([]Value, len(tb.Columns))
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = dec.Parse(buf[:0], tb, v, &c); err != nil {
				b.Fatal(err)
			}
			if buf, err = tb.TargetRow(buf, c.After, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
