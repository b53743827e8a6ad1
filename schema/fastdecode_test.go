package schema

import (
	"database/sql"
	"reflect"
	"testing"
	"time"

	json "github.com/go-json-experiment/json"
)

// FuzzFastDecodeAgrees checks the fast path against the json/v2 path it
// stands in for: whenever the fast path accepts an input, json/v2 must
// accept it too and decode exactly the same envelope.
//
//	go test -run '^$' -fuzz FuzzFastDecodeAgrees -fuzztime 60s ./schema/
func FuzzFastDecodeAgrees(f *testing.F) {
	e := benchEvent()
	v, _ := EncodeEvent(e)
	f.Add(v)
	e.Before, e.After = e.After, nil
	e.Op = OpDelete
	e.Source.GTID = "0-1-42"
	v, _ = EncodeEvent(e)
	f.Add(v)
	tricky := &Row{ID: 1<<64 - 1, Date: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		DeviceType: "quote\"back\\slash\nnl\ttab\x01ctl", EventType: "ünï 😀 \u2028",
		Message: sql.NullString{String: "", Valid: true}}
	v, _ = EncodeEvent(&Event{After: tricky, Op: OpCreate})
	f.Add(v)
	for _, s := range []string{
		`{"payload":{"before":null,"after":{"id":1,"date":1,"timestamp":2,"device_type":"a","event_type":"b","message":null,"created_at":null,"updated_at":null},"source":{"snapshot":false},"op":"c","ts_ms":3}}`,
		`{"schema":{},"payload":{"op":"r","after":{"id":1,"date":1,"timestamp":2,"device_type":"a","event_type":"b"}}}`,
		` { "op" : "u" , "after" : { "id" : 0 , "date" : -1 , "timestamp" : -86400000 , "device_type" : "\u0061\ud83d\ude00" , "event_type" : "" } } `,
		`{"op":"r","op":"r"}`, `{"op":"r","after":{"id":-1}}`, `{"ts_ms":-0}`, `{"ts_ms":1.5}`, `{"ts_ms":01}`,
		`{"ts_ms":- 1}`, `{"op":"\ud800"}`, `{"op":"\ud800\u0041"}`, `{"source":{"snapshot":"last","gtid":null,"server_id":4294967296}}`,
		`{"source":{"snapshot":true}}`, `{"after":null,"before":null}`, `{}`, `null`, `[]`, `{"op":"r"} x`,
		"{\"op\":\"\xff\"}", `{"after":{"message":"a\/b\bc\fd"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast wireEnvelope
		if !fastDecode(b, &fast, nil) {
			return
		}
		var slow wireEnvelope
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, json/v2 rejects it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path and json/v2 disagree on %q:\nfast %+v\nslow %+v", b, fast, slow)
		}
		// Through a Decoder that last saw another record's source, then
		// (the second time) this record's own: both must agree too.
		dec := Decoder{}
		other, _ := EncodeEvent(benchEvent())
		if _, err := dec.Decode(other); err != nil {
			t.Fatal(err)
		}
		for pass := 1; pass <= 2; pass++ {
			var cached wireEnvelope
			if !fastDecode(b, &cached, &dec) {
				t.Fatalf("pass %d: the fast path declined %q through a Decoder", pass, b)
			}
			if !reflect.DeepEqual(cached, slow) {
				t.Fatalf("pass %d: a Decoder and json/v2 disagree on %q:\ndecoder %+v\nslow    %+v", pass, b, cached, slow)
			}
		}
	})
}

// TestDecoderTakesOnlyTheSameSource runs a stream of records whose source
// blocks repeat, differ in one byte, or differ only in length through one
// Decoder, and checks every event against DecodeEvent's.
func TestDecoderTakesOnlyTheSameSource(t *testing.T) {
	var stream [][]byte
	add := func(mod func(e *Event)) {
		e := benchEvent()
		mod(e)
		v, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, v)
	}
	same := func(*Event) {}
	add(same)
	add(same)
	add(func(e *Event) { e.Source.Pos = 48214 })        // one byte differs
	add(func(e *Event) { e.Source.Pos = 482130 })       // longer
	add(func(e *Event) { e.Source.Pos = 4821 })         // shorter: the last source is not a prefix
	add(func(e *Event) { e.Source.Snapshot = "false" }) // the snapshot view, moved
	add(func(e *Event) { e.Source.GTID = "0-1-42" })    // a GTID pointer
	add(func(e *Event) { e.Source.GTID = "0-1-43" })
	add(func(e *Event) { e.After.DeviceType = "meter-1" }) // same source, other row
	wrapped := `{"schema":{},"payload":` + string(stream[0]) + `}`
	stream = append(stream, []byte(wrapped), stream[0], []byte(`{"source":{"snapshot":"true"},"op":"r"}`), stream[5])

	var dec Decoder
	for i, v := range stream {
		want, werr := DecodeEvent(v)
		got, gerr := dec.Decode(v)
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("record %d %s:\nDecoder     %+v, %v\nDecodeEvent %+v, %v", i, v, got, gerr, want, werr)
		}
		if werr == nil && got.Source.Table != "raw_records" {
			t.Fatalf("record %d: source %+v, not the fixture's", i, got.Source)
		}
	}
	if len(dec.src) == 0 || dec.src[0] != '{' || dec.src[len(dec.src)-1] != '}' {
		t.Fatalf("the Decoder remembers %q, not a source object", dec.src)
	}
}

// TestFastPathTakesSluiceRecords makes sure the fast path is the one that
// runs for what Sluice produces: a fallback would still be correct, only slow.
func TestFastPathTakesSluiceRecords(t *testing.T) {
	v, _ := EncodeEvent(benchEvent())
	var env wireEnvelope
	if !fastDecode(v, &env, nil) {
		t.Fatalf("fast path declined a Sluice record: %s", v)
	}
}
