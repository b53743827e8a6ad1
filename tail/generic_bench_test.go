package tail

import (
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// BenchmarkGenericImage reads IoT-shaped row images, as go-mysql hands
// them over, into the traveling columns' values: the per-row work of the
// tail of configured tables before encoding.
func BenchmarkGenericImage(b *testing.B) {
	cols := []schema.Column{
		{Name: "id", DataType: "bigint", ColumnType: "bigint(20) unsigned", Unsigned: true, Precision: 20},
		{Name: "date", DataType: "date", ColumnType: "date"},
		{Name: "timestamp", DataType: "datetime", ColumnType: "datetime"},
		{Name: "device_type", DataType: "varchar", ColumnType: "varchar(255)", Length: 255, Charset: "utf8mb4"},
		{Name: "event_type", DataType: "varchar", ColumnType: "varchar(255)", Length: 255, Charset: "utf8mb4"},
		{Name: "message", DataType: "text", ColumnType: "text", Length: 65535, Charset: "utf8mb4", Nullable: true},
		{Name: "created_at", DataType: "timestamp", ColumnType: "timestamp", Nullable: true},
		{Name: "updated_at", DataType: "timestamp", ColumnType: "timestamp", Nullable: true},
	}
	f := &followed{cols: cols, pos: []int{0, 1, 2, 3, 4, 5, 6, 7}}
	at := time.Date(2025, 10, 1, 12, 34, 56, 0, time.UTC)
	vals := []any{int64(123456), "2025-10-01", at, "sensor-17", "reading", []byte("temperature 21.5 C, humidity 40 %"), at, at}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.image(vals); err != nil {
			b.Fatal(err)
		}
	}
}
