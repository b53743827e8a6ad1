package schema

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendRFC3339UTCMatchesLayout(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	times := []time.Time{
		time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC),
		time.Date(2025, 1, 2, 3, 4, 5, 100000000, time.UTC), // trailing zeros trimmed
		time.Date(2025, 10, 1, 21, 30, 0, 123456000, est),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(-1, 3, 4, 5, 6, 7, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		{},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		ns := r.Int64N(1e9)
		if r.IntN(2) == 0 {
			ns -= ns % 1000
		}
		times = append(times, time.Unix(r.Int64N(400*365*86400)-100*365*86400, ns).In(est))
	}
	for _, ts := range times {
		if got, want := string(appendRFC3339UTC(nil, ts)), ts.UTC().Format(time.RFC3339Nano); got != want {
			t.Fatalf("appendRFC3339UTC(%v) = %s, want %s", ts, got, want)
		}
		wall, ok := AppendWall(nil, ts, 'T')
		if y := ts.Year(); ok != (y >= 0 && y <= 9999) {
			t.Fatalf("AppendWall(%v): ok = %v for year %d", ts, ok, y)
		}
		if want := ts.Format("2006-01-02T15:04:05"); ok && string(wall) != want {
			t.Fatalf("AppendWall(%v) = %s, want %s (its own location)", ts, wall, want)
		}
	}
}
