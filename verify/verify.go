// Package verify reconciles the source and the target for one time window.
//
// The window is cut into time slices holding about ChunkRows source rows
// each. For every slice both sides are read (dedupe key, date, message) and
// summarised as a row count and an order-independent checksum: the sum of a
// 64-bit FNV-1a hash of each row's key and transformed content, with the
// consumer's own Transform applied to the source side. Both tables have the
// dedupe key as a unique key, so the row count is the count of distinct keys.
// Slicing by time rather than by id works for any target, including rows
// loaded by the earlier job or by Debezium, which carry no source id.
//
// For the first slice that differs, the rows of both sides are compared key
// by key, to name the keys missing from the target, extra in it, or altered.
package verify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/schema"
)

// Config says which tables and window to reconcile.
type Config struct {
	SourceDatabase, SourceTable string
	TargetDatabase, TargetTable string
	Start, End                  time.Time
	ChunkRows                   int // source rows a slice aims at
	Workers                     int // slices compared in parallel
	MaxKeys                     int // differing keys to name
}

// DefaultConfig returns the defaults: slices of about 10,000 rows, two at a time.
func DefaultConfig() Config {
	return Config{
		SourceDatabase: "source_db", SourceTable: schema.SourceTable,
		TargetDatabase: "target_db", TargetTable: schema.TargetTable,
		ChunkRows: 10000, Workers: 2, MaxKeys: 5,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if !c.End.After(c.Start) {
		return fmt.Errorf("window: end %s is not after start %s", c.End.Format(time.DateTime), c.Start.Format(time.DateTime))
	}
	if c.ChunkRows < 1 || c.Workers < 1 {
		return errors.New("chunk rows and workers must be at least 1")
	}
	for _, id := range []string{c.SourceDatabase, c.SourceTable, c.TargetDatabase, c.TargetTable} {
		if _, err := schema.QuoteIdent(id); err != nil {
			return err
		}
	}
	return nil
}

// Slice is one compared time slice.
type Slice struct {
	Start, End             time.Time
	SourceRows, TargetRows int
	SourceSum, TargetSum   uint64
}

// Match reports whether both sides agree.
func (s Slice) Match() bool { return s.SourceRows == s.TargetRows && s.SourceSum == s.TargetSum }

// Diff is one key that differs, and how.
type Diff struct {
	Key schema.Key
	How string // "missing in target", "extra in target" or "content differs"
}

// Report is the outcome of one reconciliation.
type Report struct {
	Slices     []Slice
	FirstDiff  int // index in Slices of the first differing slice, -1 if none
	DiffKeys   []Diff
	SourceRows int
	TargetRows int
}

// OK reports whether source and target agree on the whole window.
func (r Report) OK() bool { return r.FirstDiff < 0 }

// Run reconciles the window.
func Run(ctx context.Context, src, dst *sql.DB, c Config) (Report, error) {
	if err := c.Validate(); err != nil {
		return Report{}, err
	}
	sq := query(c.SourceDatabase, c.SourceTable)
	tq := query(c.TargetDatabase, c.TargetTable)
	var count int
	qdb, _ := schema.QuoteIdent(c.SourceDatabase)
	qt, _ := schema.QuoteIdent(c.SourceTable)
	if err := src.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+qdb+"."+qt+" WHERE timestamp >= ? AND timestamp < ?", c.Start, c.End).Scan(&count); err != nil {
		return Report{}, fmt.Errorf("verify: count source rows of %s.%s: %w", c.SourceDatabase, c.SourceTable, err)
	}
	rep := Report{Slices: Slices(c.Start, c.End, count, c.ChunkRows), FirstDiff: -1}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.Workers)
	for i := range rep.Slices {
		g.Go(func() error {
			s := &rep.Slices[i]
			var err error
			if s.SourceRows, s.SourceSum, err = summarise(gctx, src, sq, s, true); err != nil {
				return fmt.Errorf("verify: source slice [%s, %s): %w", s.Start.Format(time.DateTime), s.End.Format(time.DateTime), err)
			}
			if s.TargetRows, s.TargetSum, err = summarise(gctx, dst, tq, s, false); err != nil {
				return fmt.Errorf("verify: target slice [%s, %s): %w", s.Start.Format(time.DateTime), s.End.Format(time.DateTime), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return rep, err
	}
	for i, s := range rep.Slices {
		rep.SourceRows += s.SourceRows
		rep.TargetRows += s.TargetRows
		if !s.Match() && rep.FirstDiff < 0 {
			rep.FirstDiff = i
		}
	}
	if rep.FirstDiff >= 0 {
		s := rep.Slices[rep.FirstDiff]
		diffs, err := diffSlice(ctx, src, dst, sq, tq, s, c.MaxKeys)
		if err != nil {
			return rep, err
		}
		rep.DiffKeys = diffs
	}
	return rep, nil
}

// Slices cuts [start, end) into whole-second slices that hold about perSlice
// of the rows rows each, assuming they spread evenly. The slices cover the
// window exactly, with no gap and no overlap.
func Slices(start, end time.Time, rows, perSlice int) []Slice {
	secs := int64(end.Sub(start) / time.Second)
	n := int64(max(1, (rows+perSlice-1)/perSlice))
	n = max(1, min(n, secs))
	out := make([]Slice, 0, n)
	for i := range n {
		s := Slice{Start: start.Add(time.Duration(i*secs/n) * time.Second), End: start.Add(time.Duration((i+1)*secs/n) * time.Second)}
		if i == n-1 {
			s.End = end
		}
		out = append(out, s)
	}
	return out
}

func query(database, table string) string {
	qdb, _ := schema.QuoteIdent(database)
	qt, _ := schema.QuoteIdent(table)
	return "SELECT device_type, event_type, timestamp, date, message FROM " + qdb + "." + qt + " WHERE timestamp >= ? AND timestamp < ?"
}

// each reads the rows of one slice, transformed for the source side.
func each(ctx context.Context, db *sql.DB, q string, s *Slice, transform bool, fn func(*schema.Row)) error {
	rows, err := db.QueryContext(ctx, q, s.Start, s.End)
	if err != nil {
		return err
	}
	defer rows.Close()
	var r schema.Row
	for rows.Next() {
		if err := rows.Scan(&r.DeviceType, &r.EventType, &r.Timestamp, &r.Date, &r.Message); err != nil {
			return err
		}
		if transform {
			schema.TransformRow(&r)
		}
		fn(&r)
	}
	return rows.Err()
}

func summarise(ctx context.Context, db *sql.DB, q string, s *Slice, transform bool) (n int, sum uint64, err error) {
	err = each(ctx, db, q, s, transform, func(r *schema.Row) {
		n++
		sum += Hash(r)
	})
	return n, sum, err
}

// Hash is the checksum of one row's key and content: FNV-1a (64-bit) over
// device_type, event_type, timestamp, date and message, with separators so
// that no two different rows read the same bytes.
func Hash(r *schema.Row) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
		h = (h ^ 0xff) * prime // separator: 0xff never occurs in UTF-8
	}
	num := func(v int64) {
		for i := range 8 {
			h = (h ^ uint64(byte(v>>(8*i)))) * prime
		}
	}
	str(r.DeviceType)
	str(r.EventType)
	num(r.Timestamp.Unix())
	num(r.Date.Unix())
	if r.Message.Valid {
		num(1)
		str(r.Message.String)
	} else {
		num(0)
	}
	return h
}

func diffSlice(ctx context.Context, src, dst *sql.DB, sq, tq string, s Slice, maxKeys int) ([]Diff, error) {
	read := func(db *sql.DB, q string, transform bool) (map[schema.Key]uint64, error) {
		m := map[schema.Key]uint64{}
		err := each(ctx, db, q, &s, transform, func(r *schema.Row) { m[r.Key()] = Hash(r) })
		return m, err
	}
	sm, err := read(src, sq, true)
	if err != nil {
		return nil, fmt.Errorf("verify: source slice [%s, %s): %w", s.Start.Format(time.DateTime), s.End.Format(time.DateTime), err)
	}
	tm, err := read(dst, tq, false)
	if err != nil {
		return nil, fmt.Errorf("verify: target slice [%s, %s): %w", s.Start.Format(time.DateTime), s.End.Format(time.DateTime), err)
	}
	var diffs []Diff
	for k, h := range sm {
		th, ok := tm[k]
		switch {
		case !ok:
			diffs = append(diffs, Diff{Key: k, How: "missing in target"})
		case th != h:
			diffs = append(diffs, Diff{Key: k, How: "content differs"})
		}
	}
	for k := range tm {
		if _, ok := sm[k]; !ok {
			diffs = append(diffs, Diff{Key: k, How: "extra in target"})
		}
	}
	slices.SortFunc(diffs, func(a, b Diff) int { return a.Key.Compare(b.Key) })
	return diffs[:min(len(diffs), maxKeys)], nil
}
