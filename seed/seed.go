// Package seed writes deterministic synthetic IoT event logs into the source
// table, for the demo, the tests and the benchmarks.
//
// Row i of N gets the timestamp Start + floor(i·S/N) seconds, where S is the
// window's length in seconds, so rows spread evenly over the window. Its
// (device, event type) pair is (i·7919 mod M) for M = Devices·len(EventTypes):
// a permutation, so any M consecutive rows have distinct pairs, and rows that
// share a second are consecutive. The dedupe key is therefore unique whenever
// N/S ≤ M (30,000 rows a second with the defaults: a one-day window holds
// over 2.5 billion rows). Messages are lower-case words, 40 to 120 characters,
// drawn from a generator seeded by i, so the same N and window always give
// the same rows. Rows are written with INSERT IGNORE: seeding a window twice
// adds nothing the second time.
package seed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/schema"
)

// EventTypes are the event types the seed draws from.
var EventTypes = []string{"reading", "heartbeat", "alert", "status", "error", "firmware_update"}

var deviceKinds = []string{"thermostat", "camera", "doorlock", "meter", "sensor"}

var words = strings.Fields(`temperature humidity pressure voltage battery signal level normal high low
ok warning critical sensor reading value threshold exceeded restored online offline firmware update
started finished door opened closed motion detected zone alarm cleared power grid meter pulse count
network latency packet loss retry timeout calibration drift check passed failed room kitchen garage`)

// Config says how many rows to write into which window.
type Config struct {
	Database  string
	Table     string
	Rows      int
	Start     time.Time // inclusive
	End       time.Time // exclusive
	Devices   int       // distinct device ids
	BatchRows int       // rows per INSERT statement
	Writers   int       // INSERT statements in parallel
}

// DefaultConfig returns the defaults: 5,000 devices, 2,000-row statements,
// two writers. Rows and the window are left for the caller.
func DefaultConfig() Config {
	return Config{Database: "source_db", Table: schema.SourceTable, Devices: 5000, BatchRows: 2000, Writers: 2}
}

// Validate reports the first setting that cannot work, including a window too
// short to hold Rows distinct dedupe keys.
func (c Config) Validate() error {
	switch {
	case c.Rows < 0:
		return fmt.Errorf("rows: must not be negative, got %d", c.Rows)
	case !c.End.After(c.Start):
		return fmt.Errorf("window: end %s is not after start %s", c.End.Format(time.DateTime), c.Start.Format(time.DateTime))
	case c.Devices < 1 || c.BatchRows < 1 || c.Writers < 1:
		return errors.New("devices, batch rows and writers must be at least 1")
	}
	secs := int64(c.End.Sub(c.Start) / time.Second)
	if secs < 1 {
		return fmt.Errorf("window: shorter than one second")
	}
	if perSec := (int64(c.Rows) + secs - 1) / secs; perSec > int64(c.pairs()) {
		return fmt.Errorf("rows: %d rows in %d seconds need %d distinct keys a second, more than the %d device/event pairs", c.Rows, secs, perSec, c.pairs())
	}
	if c.pairs()%7919 == 0 {
		return fmt.Errorf("devices: %d makes the key permutation degenerate; pick another count", c.Devices)
	}
	if _, err := schema.QuoteIdent(c.Database); err != nil {
		return err
	}
	_, err := schema.QuoteIdent(c.Table)
	return err
}

func (c Config) pairs() int { return c.Devices * len(EventTypes) }

// Row returns row i of the configured N, without its id.
func (c Config) Row(i int) schema.Row {
	secs := int64(c.End.Sub(c.Start) / time.Second)
	ts := c.Start.Add(time.Duration(int64(i)*secs/int64(max(c.Rows, 1))) * time.Second).UTC()
	j := (i * 7919) % c.pairs()
	device, event := j%c.Devices, j/c.Devices
	r := schema.Row{
		Date:       time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC),
		Timestamp:  ts,
		DeviceType: fmt.Sprintf("%s-%05d", deviceKinds[device%len(deviceKinds)], device),
		EventType:  EventTypes[event],
		CreatedAt:  sql.NullTime{Time: ts, Valid: true},
		UpdatedAt:  sql.NullTime{Time: ts, Valid: true},
	}
	r.Message = sql.NullString{String: message(uint64(i)), Valid: true}
	return r
}

// splitmix64 is a small, well-mixed generator: the same i gives the same message.
func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func message(i uint64) string {
	state := i
	n := 40 + int(splitmix64(&state)%81) // 40..120
	var sb strings.Builder
	sb.Grow(n + 16)
	for sb.Len() < n {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[splitmix64(&state)%uint64(len(words))])
	}
	s := sb.String()[:n]
	if s[n-1] == ' ' { // never end on a space: keep the length exact
		s = s[:n-1] + "s"
	}
	return s
}

// Run writes the rows, calling progress (if not nil) with the running total
// after each statement. It creates nothing: the table must exist.
func Run(ctx context.Context, db *sql.DB, c Config, progress func(written int64)) error {
	if err := c.Validate(); err != nil {
		return err
	}
	qdb, _ := schema.QuoteIdent(c.Database)
	qt, _ := schema.QuoteIdent(c.Table)
	prefix := "INSERT IGNORE INTO " + qdb + "." + qt + " (date, timestamp, device_type, event_type, message, created_at, updated_at) VALUES "
	var next, written atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for range c.Writers {
		g.Go(func() error {
			args := make([]any, 0, c.BatchRows*7)
			var sb strings.Builder
			for {
				lo := int(next.Add(int64(c.BatchRows))) - c.BatchRows
				if lo >= c.Rows {
					return nil
				}
				hi := min(lo+c.BatchRows, c.Rows)
				args = args[:0]
				sb.Reset()
				sb.WriteString(prefix)
				for i := lo; i < hi; i++ {
					if i > lo {
						sb.WriteByte(',')
					}
					sb.WriteString("(?,?,?,?,?,?,?)")
					r := c.Row(i)
					args = append(args, r.Date, r.Timestamp, r.DeviceType, r.EventType, r.Message.String, r.CreatedAt.Time, r.UpdatedAt.Time)
				}
				if _, err := db.ExecContext(ctx, sb.String(), args...); err != nil {
					return fmt.Errorf("seed: insert rows %d..%d into %s.%s: %w", lo, hi-1, c.Database, c.Table, err)
				}
				if n := written.Add(int64(hi - lo)); progress != nil {
					progress(n)
				}
			}
		})
	}
	return g.Wait()
}
