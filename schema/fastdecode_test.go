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
		if !fastDecode(b, &fast) {
			return
		}
		var slow wireEnvelope
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast path accepted %q, json/v2 rejects it: %v", b, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path and json/v2 disagree on %q:\nfast %+v\nslow %+v", b, fast, slow)
		}
	})
}

// TestFastPathTakesSluiceRecords makes sure the fast path is the one that
// runs for what Sluice produces: a fallback would still be correct, only slow.
func TestFastPathTakesSluiceRecords(t *testing.T) {
	v, _ := EncodeEvent(benchEvent())
	var env wireEnvelope
	if !fastDecode(v, &env) {
		t.Fatalf("fast path declined a Sluice record: %s", v)
	}
}
