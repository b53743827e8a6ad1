package consumer

import (
	"database/sql"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// layoutDateTime and layoutDate are the time.AppendFormat versions the hand
// formatters replace: the reference they must match, and the B side of the
// benchmark.
func layoutDateTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	dst = append(dst, '\'')
	if t.Nanosecond() == 0 {
		dst = t.AppendFormat(dst, time.DateTime)
	} else {
		dst = t.AppendFormat(dst, "2006-01-02 15:04:05.000000")
	}
	return append(dst, '\'')
}

func layoutDate(dst []byte, t time.Time) []byte {
	dst = append(dst, '\'')
	dst = t.AppendFormat(dst, time.DateOnly)
	return append(dst, '\'')
}

func TestAppendDateTimeMatchesLayout(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	times := []time.Time{
		time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC), // truncated, not rounded
		time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC),            // below a microsecond: .000000
		time.Date(2025, 10, 1, 21, 30, 0, 123456000, est),        // another day in UTC
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(-1, 3, 4, 5, 6, 7, 0, time.UTC),    // outside 0..9999: the layout's form
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), // likewise
		{},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(400*365*86400)-100*365*86400, r.Int64N(2e9)%1e9).In(est))
	}
	for _, ts := range times {
		if got, want := string(appendDateTime(nil, ts)), string(layoutDateTime(nil, ts)); got != want {
			t.Fatalf("appendDateTime(%v) = %s, want %s", ts, got, want)
		}
		if got, want := string(appendDate(nil, ts)), string(layoutDate(nil, ts)); got != want {
			t.Fatalf("appendDate(%v) = %s, want %s", ts, got, want)
		}
	}
}

// BenchmarkAppendDateTime is the pair behind the hand formatter: the four
// datetimes and the date of one row, by time.AppendFormat and by hand.
//
//	go test -run '^$' -bench AppendDateTime -count 6 ./consumer
func BenchmarkAppendDateTime(b *testing.B) {
	ts := time.Date(2025, 10, 1, 13, 14, 15, 0, time.UTC)
	la := time.Date(2026, 11, 23, 21, 0, 0, 123456000, time.UTC)
	buf := make([]byte, 0, 256)
	for _, f := range []struct {
		name           string
		date, datetime func([]byte, time.Time) []byte
	}{{"layout", layoutDate, layoutDateTime}, {"hand", appendDate, appendDateTime}} {
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				buf = f.date(buf[:0], ts)
				buf = f.datetime(buf, ts)
				buf = f.datetime(buf, ts)
				buf = f.datetime(buf, ts)
				buf = f.datetime(buf, la)
			}
		})
	}
}

// BenchmarkAppendRowText is one row as the consumer writes it: an upsert's
// value tuple, and a bulk load's line.
//
//	go test -run '^$' -bench AppendRowText -count 6 ./consumer
func BenchmarkAppendRowText(b *testing.B) {
	ts := time.Date(2025, 10, 1, 13, 14, 15, 0, time.UTC)
	r := &schema.Row{ID: 123456789, Date: ts, Timestamp: ts, DeviceType: "thermostat-01234", EventType: "reading",
		Message:   sql.NullString{String: "TEMPERATURE CLOSED CRITICAL TIMEOUT RETRY ROOMS", Valid: true},
		CreatedAt: sql.NullTime{Time: ts, Valid: true}, UpdatedAt: sql.NullTime{Time: ts, Valid: true}}
	it := item{row: r, version: 1 << 32, hasVer: true}
	la := time.Date(2026, 11, 23, 21, 0, 0, 123456000, time.UTC)
	buf := make([]byte, 0, 512)
	b.Run("tuple", func(b *testing.B) {
		loadedAt := appendDateTime(nil, la)
		for b.Loop() {
			buf = appendTuple(buf[:0], &it, loadedAt, true)
		}
	})
	b.Run("line", func(b *testing.B) {
		loadedAt := appendWall(nil, la)
		for b.Loop() {
			buf = appendLine(buf[:0], &it, loadedAt)
		}
	})
}
