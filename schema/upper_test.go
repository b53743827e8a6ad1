package schema

import (
	"database/sql"
	"strings"
	"testing"
	"time"
)

func TestTransformRow(t *testing.T) {
	tests := []struct {
		name string
		in   sql.NullString
		want sql.NullString
	}{
		{name: "ASCII", in: sql.NullString{String: "door opened in zone 3", Valid: true}, want: sql.NullString{String: "DOOR OPENED IN ZONE 3", Valid: true}},
		{name: "already upper", in: sql.NullString{String: "OK", Valid: true}, want: sql.NullString{String: "OK", Valid: true}},
		// ß has no one-rune upper case; simple case mapping keeps it (as
		// verify must, since it applies this same function).
		{name: "sharp s", in: sql.NullString{String: "straße", Valid: true}, want: sql.NullString{String: "STRAßE", Valid: true}},
		{name: "y diaeresis", in: sql.NullString{String: "ÿ", Valid: true}, want: sql.NullString{String: "Ÿ", Valid: true}},
		{name: "Latin, Greek, Cyrillic", in: sql.NullString{String: "élan αβγ жук", Valid: true}, want: sql.NullString{String: "ÉLAN ΑΒΓ ЖУК", Valid: true}},
		{name: "no case", in: sql.NullString{String: "日本 123 🚪 -_", Valid: true}, want: sql.NullString{String: "日本 123 🚪 -_", Valid: true}},
		{name: "empty stays empty, not NULL", in: sql.NullString{String: "", Valid: true}, want: sql.NullString{String: "", Valid: true}},
		{name: "NULL stays NULL", in: sql.NullString{}, want: sql.NullString{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := time.Date(2024, 3, 5, 1, 2, 3, 0, time.UTC)
			r := Row{ID: 9, DeviceType: "sensor-00001", EventType: "reading", Timestamp: ts, Message: tt.in,
				CreatedAt: sql.NullTime{Time: ts, Valid: true}}
			TransformRow(&r)
			if r.Message != tt.want {
				t.Errorf("TransformRow(%+v) message = %+v, want %+v", tt.in, r.Message, tt.want)
			}
			// Only the message changes: the key must stay as it was.
			if r.DeviceType != "sensor-00001" || r.EventType != "reading" || !r.Timestamp.Equal(ts) || r.ID != 9 || !r.CreatedAt.Time.Equal(ts) {
				t.Errorf("TransformRow changed more than the message: %+v", r)
			}
		})
	}
}

func TestTransformRowIdempotent(t *testing.T) {
	r := Row{Message: sql.NullString{String: "Straße ÿ mixed Case", Valid: true}}
	TransformRow(&r)
	once := r.Message
	TransformRow(&r)
	if r.Message != once {
		t.Errorf("TransformRow twice = %q, once = %q", r.Message.String, once.String)
	}
}

// TestUpperMatchesToUpper checks the ASCII path against strings.ToUpper,
// on ASCII, on non-ASCII and on invalid UTF-8, in the eight-byte words and
// in the bytes after them.
func TestUpperMatchesToUpper(t *testing.T) {
	cases := []string{"", "a", "Z", "abc xyz", "ALREADY UPPER 123", "mixed Case `{@[", "ünïcode", "straße", "\xff\xfeab",
		"failed signal passed normal cleared garage temperature normal sensor restored level voltage meter meter press", "ǅ ǆ ß ﬀ"}
	for c := range 256 {
		b := string([]byte{byte(c)})
		cases = append(cases, "ab"+string(rune(c))+"yz", "ab"+b+"yz",
			// every byte value in each lane of a word, beside letters either side of the range
			"@AZ[`az{"[:c%8]+b+"@AZ[`az{abcdefghij"[c%8:], "ABCDEFGH"+b+"abcdefghijklmno"+b)
	}
	for _, s := range cases {
		if got, want := Upper(s), strings.ToUpper(s); got != want {
			t.Errorf("Upper(%q) = %q, want %q", s, got, want)
		}
		if got, want := string(upperBytes([]byte(s))), strings.ToUpper(s); got != want {
			t.Errorf("upperBytes(%q) = %q, want %q", s, got, want)
		}
	}
}

// BenchmarkUpper upper-cases a seeded message, against strings.ToUpper.
//
//	go test -run '^$' -bench Upper -benchmem -count 6 ./schema
func BenchmarkUpper(b *testing.B) {
	s := "failed signal passed normal cleared garage temperature normal sensor restored level voltage meter meter press"
	b.Run("upper", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Upper(s)
		}
	})
	b.Run("strings.ToUpper", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = strings.ToUpper(s)
		}
	})
}
