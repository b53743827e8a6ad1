package schema_test

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

func ExampleAppendEvent() {
	ts := time.Date(2024, 3, 5, 13, 14, 15, 0, time.UTC)
	e := schema.Event{
		After: &schema.Row{
			ID:         42,
			Date:       time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC),
			Timestamp:  ts,
			DeviceType: "sensor-00042",
			EventType:  "reading",
			Message:    sql.NullString{String: "battery low", Valid: true},
			CreatedAt:  sql.NullTime{Time: ts, Valid: true},
			// UpdatedAt is NULL.
		},
		Source: schema.Source{
			Connector: "sluice", Name: "sluice", TsMs: 1709644500000, Snapshot: "true",
			DB: "source_db", Table: "raw_records", File: "mysql-bin.000003", Pos: 4,
		},
		Op:   schema.OpRead,
		TsMs: 1709644500123,
	}
	b := schema.AppendEvent(nil, &e)
	fmt.Println(string(b))
	// Output:
	// {"before":null,"after":{"id":42,"date":19787,"timestamp":1709644455000,"device_type":"sensor-00042","event_type":"reading","message":"battery low","created_at":"2024-03-05T13:14:15Z","updated_at":null},"source":{"connector":"sluice","name":"sluice","ts_ms":1709644500000,"db":"source_db","table":"raw_records","server_id":0,"file":"mysql-bin.000003","pos":4,"row":0,"snapshot":"true"},"op":"r","ts_ms":1709644500123}
}

func ExampleAppendKey() {
	k := schema.Key{
		DeviceType: "sensor-00042",
		EventType:  "reading",
		Timestamp:  time.Date(2024, 3, 5, 13, 14, 15, 678_000_000, time.UTC),
	}
	b := schema.AppendKey(nil, k)
	fmt.Println(string(b))
	fmt.Println(k)
	// Output:
	// {"device_type":"sensor-00042","event_type":"reading","timestamp":1709644455678}
	// (sensor-00042, reading, 2024-03-05 13:14:15)
}
