package schema

import (
	"errors"
	"testing"
)

// FuzzDecodeEvent checks that DecodeEvent never panics, that every error it
// returns is ErrMalformed, and that whatever it accepts survives a re-encode
// unchanged: what the consumer applies is what it decoded.
func FuzzDecodeEvent(f *testing.F) {
	for _, e := range []Event{
		{After: testRow(), Source: testSource("true"), Op: OpRead, TsMs: 1709644500123},
		{Before: testRow(), Source: testSource("false"), Op: OpDelete, TsMs: 3},
	} {
		b, err := EncodeEvent(&e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(debeziumRecord(`{"before":null,"after":` + debeziumAfter + `,"source":{"connector":"mysql","snapshot":"last","gtid":null,"sequence":null,"file":"mysql-bin.000003","pos":157},"op":"r","ts_ms":1}`)))
	f.Add([]byte(`{"op":"c","after":{"id":1,"date":1,"timestamp":1,"message":null,"created_at":"2024-03-05T13:14:16.5+02:00"},"source":{"snapshot":true}}`))
	f.Add([]byte(`{"op":"d","before":{"id":18446744073709551615,"date":-1,"timestamp":-1}}`))
	f.Add([]byte(`{"op":"c"}`))
	f.Add([]byte(`{"payload":null}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`not json`))

	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeEvent(%q): error %q does not wrap ErrMalformed", b, err)
			}
			return
		}
		b2, err := EncodeEvent(&e)
		if err != nil {
			t.Fatalf("EncodeEvent of decoded %q: %v", b, err)
		}
		e2, err := DecodeEvent(b2)
		if err != nil {
			t.Fatalf("DecodeEvent(%q) accepted %q but not its re-encoding %q: %v", b, b, b2, err)
		}
		if d := eventDiff(&e, &e2); d != "" {
			t.Fatalf("re-encoding %q as %q changed the event:\n%s", b, b2, d)
		}
	})
}
