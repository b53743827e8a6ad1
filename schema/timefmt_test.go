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

// TestParseRFC3339UTC checks the fast parse against time.Parse: whatever it
// accepts, time.Parse accepts as the same instant, and it accepts every
// whole-second UTC time appendRFC3339UTC writes.
func TestParseRFC3339UTC(t *testing.T) {
	check := func(s string) {
		t.Helper()
		got, ok := parseRFC3339UTC(s)
		want, err := time.Parse(time.RFC3339Nano, s)
		if ok && (err != nil || !got.Equal(want) || got.Location() != time.UTC) {
			t.Errorf("parseRFC3339UTC(%q) = %v, time.Parse: %v, %v", s, got, want, err)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		tm := time.Unix(r.Int64N(253402300800+62135596800)-62135596800, 0).UTC()
		s := string(appendRFC3339UTC(nil, tm))
		got, ok := parseRFC3339UTC(s)
		if !ok || !got.Equal(tm) {
			t.Fatalf("parseRFC3339UTC(%q) = %v, %v; want %v", s, got, ok, tm)
		}
		check(s)
	}
	for _, s := range []string{
		"2025-10-01T02:57:46Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-29T12:00:00Z",
		"2025-02-29T12:00:00Z", "2025-04-31T00:00:00Z", "2025-13-01T00:00:00Z", "2025-00-01T00:00:00Z",
		"2025-10-00T00:00:00Z", "2025-10-01T24:00:00Z", "2025-10-01T23:60:00Z", "2025-10-01T23:59:60Z",
		"2025-10-01 02:57:46Z", "2025-10-01T02:57:46z", "2025-10-01T02:57:4xZ", "+025-10-01T02:57:46Z",
		"2025-1a-01T02:57:46Z", "2025-10-01T02:57:46.5Z", "2025-10-01T02:57:46+00:00", "",
	} {
		check(s)
	}
	if _, ok := parseRFC3339UTC("2025-02-29T12:00:00Z"); ok {
		t.Error("parseRFC3339UTC accepted 2025-02-29, which does not exist")
	}
}
