// Package backfill reads one time window of the source table and hands every
// row to a Sink as a snapshot-read change event (op "r").
//
// The window [Start, End) is turned into the id range it covers, through the
// timestamp index, and that range into keyset chunks, planned lazily so that
// gaps in the ids are skipped with one primary-key lookup (WHERE id > ? AND id <= ?
// AND timestamp >= ? AND timestamp < ?), never OFFSET. Readers take chunks in
// parallel. Run returns nil only after the Sink has acknowledged every row of
// every chunk; any read or delivery failure fails the run and names the chunk.
// Memory is bounded by the readers (one chunk each) and by the Sink's own
// buffer, whatever the size of the window.
//
// Rows inserted into the window after the range was planned (ids beyond the
// planned maximum) are not read; the tail, or a later run, picks them up.
//
// Metrics:
//
//	sluice_backfill_rows_read_total       rows read from the source
//	sluice_backfill_chunks_planned        chunks planned so far (the plan is walked lazily)
//	sluice_backfill_chunks_done_total     chunks read and acknowledged
//	sluice_backfill_progress_ratio        share of the planned id range acknowledged (0..1)
//	sluice_backfill_chunk_read_seconds    time to read one chunk
package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/schema"
)

// Sink takes the change events of one chunk. It must not keep events after
// it returns. It calls acked exactly once, when every event is durable (nil)
// or when one failed.
type Sink interface {
	Send(ctx context.Context, events []schema.Event, acked func(error)) error
}

// Config says which window of which table to read, and how.
type Config struct {
	Database  string    // source database, e.g. source_db
	Table     string    // source table, e.g. raw_records
	Start     time.Time // inclusive
	End       time.Time // exclusive
	ChunkSize uint64    // ids per chunk
	Readers   int       // chunks read in parallel
}

// DefaultConfig returns the defaults: 10,000 ids a chunk and one reader per
// core (at least two, so a reader waiting on the network does not idle the
// server). The window is left for the caller.
func DefaultConfig() Config {
	return Config{
		Database:  "source_db",
		Table:     schema.SourceTable,
		ChunkSize: 10000,
		Readers:   max(2, runtime.NumCPU()),
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Start.IsZero() || c.End.IsZero():
		return errors.New("window: start and end are required")
	case !c.End.After(c.Start):
		return fmt.Errorf("window: end %s is not after start %s", c.End.Format(time.DateTime), c.Start.Format(time.DateTime))
	case c.ChunkSize == 0:
		return errors.New("chunk size must be at least 1")
	case c.Readers < 1:
		return fmt.Errorf("readers must be at least 1, got %d", c.Readers)
	}
	if _, err := schema.QuoteIdent(c.Database); err != nil {
		return fmt.Errorf("source database: %w", err)
	}
	if _, err := schema.QuoteIdent(c.Table); err != nil {
		return fmt.Errorf("source table: %w", err)
	}
	return nil
}

// Progress is a snapshot of a running backfill.
type Progress struct {
	Chunks, ChunksDone int
	IDs, IDsDone       uint64 // planned id range and the part acknowledged
	RowsRead           int64
	RowsAcked          int64
}

// Backfill reads one window. Create it with New and call Run once.
type Backfill struct {
	cfg     Config
	db      *sql.DB
	sink    Sink
	metrics *Metrics
	log     *slog.Logger
	query   [3]string // chunk query with exclusive and inclusive lower bound; next id

	chunks, chunksDone atomic.Int64
	ids, idsDone       atomic.Uint64
	rowsRead, acked    atomic.Int64
	position           schema.Source
}

// New prepares a backfill. db is the source; m may be nil.
func New(cfg Config, db *sql.DB, sink Sink, m *Metrics, log *slog.Logger) (*Backfill, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.Default()
	}
	qdb, _ := schema.QuoteIdent(cfg.Database)
	qt, _ := schema.QuoteIdent(cfg.Table)
	sel := "SELECT id, date, timestamp, device_type, event_type, message, created_at, updated_at FROM " + qdb + "." + qt
	return &Backfill{
		cfg: cfg, db: db, sink: sink, metrics: m, log: log,
		query: [3]string{
			sel + " WHERE id > ? AND id <= ? AND timestamp >= ? AND timestamp < ? ORDER BY id",
			sel + " WHERE id >= ? AND id <= ? AND timestamp >= ? AND timestamp < ? ORDER BY id",
			"SELECT MIN(id) FROM " + qdb + "." + qt + " WHERE id >= ?",
		},
		position: schema.Source{Connector: "sluice", Name: "sluice", Snapshot: "true", DB: cfg.Database, Table: cfg.Table},
	}, nil
}

// Progress reports how far the backfill is.
func (b *Backfill) Progress() Progress {
	return Progress{
		Chunks: int(b.chunks.Load()), ChunksDone: int(b.chunksDone.Load()),
		IDs: b.ids.Load(), IDsDone: b.idsDone.Load(),
		RowsRead: b.rowsRead.Load(), RowsAcked: b.acked.Load(),
	}
}

// IDRange returns the smallest and largest id of the rows in the window, and
// false for an empty window. It reads only the timestamp index.
func (b *Backfill) IDRange(ctx context.Context) (lo, hi uint64, ok bool, err error) {
	qdb, _ := schema.QuoteIdent(b.cfg.Database)
	qt, _ := schema.QuoteIdent(b.cfg.Table)
	var smn, smx sql.NullString // text keeps the full unsigned range
	q := "SELECT MIN(id), MAX(id) FROM " + qdb + "." + qt + " WHERE timestamp >= ? AND timestamp < ?"
	if err := b.db.QueryRowContext(ctx, q, b.cfg.Start, b.cfg.End).Scan(&smn, &smx); err != nil {
		return 0, 0, false, fmt.Errorf("backfill: id range of %s.%s for [%s, %s): %w",
			b.cfg.Database, b.cfg.Table, b.cfg.Start.Format(time.DateTime), b.cfg.End.Format(time.DateTime), err)
	}
	if !smn.Valid {
		return 0, 0, false, nil
	}
	if lo, err = strconv.ParseUint(smn.String, 10, 64); err != nil {
		return 0, 0, false, fmt.Errorf("backfill: min id %q: %w", smn.String, err)
	}
	if hi, err = strconv.ParseUint(smx.String, 10, 64); err != nil {
		return 0, 0, false, fmt.Errorf("backfill: max id %q: %w", smx.String, err)
	}
	return lo, hi, true, nil
}

// capturePosition records the source's binlog position at the start of the
// read, as Debezium does for snapshot events. Without the REPLICATION CLIENT
// privilege or a binlog it stays unknown, which is not an error.
func (b *Backfill) capturePosition(ctx context.Context) {
	for _, q := range []string{"SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"} {
		rows, err := b.db.QueryContext(ctx, q)
		if err != nil {
			continue
		}
		cols, _ := rows.Columns()
		if rows.Next() && len(cols) >= 2 {
			vals := make([]any, len(cols))
			var file string
			var pos uint64
			vals[0], vals[1] = &file, &pos
			for i := 2; i < len(cols); i++ {
				vals[i] = new(sql.RawBytes)
			}
			if rows.Scan(vals...) == nil {
				b.position.File, b.position.Pos = file, pos
			}
		}
		rows.Close()
		return
	}
}

// Run reads the window and returns once every row is acknowledged by the
// Sink, or on the first failure. An empty window is a successful run.
func (b *Backfill) Run(ctx context.Context) error {
	start := time.Now()
	lo, hi, ok, err := b.IDRange(ctx)
	if err != nil {
		return err
	}
	if !ok {
		b.log.Info("backfill: window is empty")
		b.metrics.progress.Set(1)
		return nil
	}
	b.capturePosition(ctx)
	total := hi - lo + 1
	b.ids.Store(total)
	b.log.Info("backfill: planned", "min_id", lo, "max_id", hi, "chunk_size", b.cfg.ChunkSize, "readers", b.cfg.Readers,
		"binlog_file", b.position.File, "binlog_pos", b.position.Pos)
	idsDone := func(n uint64) {
		done := b.idsDone.Add(n)
		b.metrics.progress.Set(float64(done) / float64(total))
	}

	g, gctx := errgroup.WithContext(ctx)
	todo := make(chan Chunk)
	var pending sync.WaitGroup
	var ackErr error
	var ackOnce sync.Once
	failed := make(chan struct{})
	planner := NewPlanner(lo, hi, b.cfg.ChunkSize, b.nextID)
	g.Go(func() error {
		defer close(todo)
		for {
			c, skipped, ok, err := planner.Next(gctx)
			if err != nil {
				return err
			}
			idsDone(skipped)
			if !ok {
				return nil
			}
			b.chunks.Add(1)
			b.metrics.chunksPlanned.Inc()
			select {
			case todo <- c:
			case <-gctx.Done():
				return nil
			case <-failed:
				return nil
			}
		}
	})
	for range b.cfg.Readers {
		g.Go(func() error {
			var rows []schema.Row
			var events []schema.Event
			for c := range todo {
				var err error
				rows, err = b.readChunk(gctx, c, rows[:0])
				if err != nil {
					return err
				}
				events = b.toEvents(rows, events[:0])
				n := int64(len(rows))
				pending.Add(1)
				// ctx, not gctx: the records outlive the readers' group,
				// whose context is cancelled as soon as the reading ends.
				err = b.sink.Send(ctx, events, func(err error) {
					defer pending.Done()
					if err != nil {
						ackOnce.Do(func() {
							ackErr = fmt.Errorf("backfill: chunk %s: delivery: %w", c, err)
							close(failed)
						})
						return
					}
					b.acked.Add(n)
					b.chunksDone.Add(1)
					b.metrics.chunksDone.Inc()
					idsDone(c.Span())
				})
				if err != nil {
					pending.Done() // Send failed before taking the chunk: acked will not be called
					return fmt.Errorf("backfill: chunk %s: %w", c, err)
				}
			}
			return nil
		})
	}
	readErr := g.Wait()
	acksDone := make(chan struct{})
	go func() { pending.Wait(); close(acksDone) }()
	select {
	case <-acksDone:
	case <-ctx.Done():
		return fmt.Errorf("backfill: interrupted with %d of %d chunks acknowledged: %w", b.chunksDone.Load(), b.chunks.Load(), ctx.Err())
	}
	if ackErr != nil {
		return ackErr
	}
	if readErr != nil {
		return readErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backfill: interrupted with %d of %d chunks acknowledged: %w", b.chunksDone.Load(), b.chunks.Load(), err)
	}
	b.log.Info("backfill: done", "rows", b.acked.Load(), "chunks", b.chunks.Load(), "seconds", time.Since(start).Seconds())
	return nil
}

// nextID returns the smallest id at or after from, through the primary key.
func (b *Backfill) nextID(ctx context.Context, from uint64) (uint64, bool, error) {
	var id sql.NullString // text keeps the full unsigned range
	if err := b.db.QueryRowContext(ctx, b.query[2], from).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("backfill: next id from %d in %s.%s: %w", from, b.cfg.Database, b.cfg.Table, err)
	}
	if !id.Valid {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(id.String, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("backfill: next id %q: %w", id.String, err)
	}
	return n, true, nil
}

// readChunk reads the window's rows of one chunk, appending them to rows.
func (b *Backfill) readChunk(ctx context.Context, c Chunk, rows []schema.Row) ([]schema.Row, error) {
	t0 := time.Now()
	q := b.query[0]
	if c.IncludeLo {
		q = b.query[1]
	}
	res, err := b.db.QueryContext(ctx, q, c.Lo, c.Hi, b.cfg.Start, b.cfg.End)
	if err != nil {
		return rows, fmt.Errorf("backfill: read chunk %s of %s.%s: %w", c, b.cfg.Database, b.cfg.Table, err)
	}
	defer res.Close()
	for res.Next() {
		var r schema.Row
		if err := res.Scan(&r.ID, &r.Date, &r.Timestamp, &r.DeviceType, &r.EventType, &r.Message, &r.CreatedAt, &r.UpdatedAt); err != nil {
			return rows, fmt.Errorf("backfill: scan chunk %s after id %d: %w", c, lastID(rows), err)
		}
		rows = append(rows, r)
	}
	if err := res.Err(); err != nil {
		return rows, fmt.Errorf("backfill: read chunk %s after id %d: %w", c, lastID(rows), err)
	}
	b.rowsRead.Add(int64(len(rows)))
	b.metrics.rowsRead.Add(float64(len(rows)))
	b.metrics.chunkRead.Observe(time.Since(t0).Seconds())
	return rows, nil
}

func lastID(rows []schema.Row) uint64 {
	if len(rows) == 0 {
		return 0
	}
	return rows[len(rows)-1].ID
}

// toEvents wraps rows as snapshot-read change events.
func (b *Backfill) toEvents(rows []schema.Row, events []schema.Event) []schema.Event {
	now := time.Now().UnixMilli()
	src := b.position
	src.TsMs = now
	for i := range rows {
		events = append(events, schema.Event{After: &rows[i], Source: src, Op: schema.OpRead, TsMs: now})
	}
	return events
}
