// Package backfill reads one time window of a configured source table (a
// resolved schema.Table) and hands every row to a ChangeSink as a
// snapshot-read change event (op "r"): a schema.Change of the traveling
// columns' canonical text.
//
// The window [Start, End) on the table's Window column (a table without one
// is read whole) is turned into the id range it covers, and that range into
// keyset chunks on the table's ID column, planned lazily so that gaps in the
// ids are skipped with one primary-key lookup (WHERE id > ? AND id <= ? AND
// window >= ? AND window < ?), never OFFSET. Readers take chunks in
// parallel. Run returns nil only after the sink has acknowledged every row
// of every chunk. Memory is bounded by the readers (one chunk each) and by
// the sink's own buffer, whatever the size of the window.
//
// A chunk whose read fails with a transient MySQL error (deadlock, lock wait
// timeout, lost connection) is read again, and a chunk whose delivery fails
// is read and produced again, up to ChunkAttempts in all, with exponential
// backoff and jitter. Duplicates from a re-produced chunk are harmless: the
// consumer upserts by key. A chunk that still fails fails the run with a
// ChunkError naming it. Cancellation is never retried.
//
// With Checkpoints, the ids of acknowledged chunks are saved (coalesced into
// ranges, at most every CheckpointInterval and once more at the end, always
// after the acknowledgement), and a run of the same window started again
// skips them: an interrupted run resumes instead of starting over.
//
// Every chunk's events carry the source binlog position that matches what
// the chunk read, so that the consumer can order them against binlog changes
// of the same rows: a read never wins over a change it did not see. On
// MariaDB (and Percona Server) a chunk is read in its own read-only
// transaction WITH CONSISTENT SNAPSHOT and labelled with that snapshot's
// binlog position (Binlog_snapshot_file/_position); on MySQL, with the
// binlog position read just before the chunk's query, never newer than what
// the query sees; without a binlog, with none (see snapshot.go).
//
// Rows inserted into the window after the range was planned (ids beyond the
// planned maximum) are not read; the tail, or a later run, picks them up.
//
// Metrics, each labelled table: the source table read, db.table (e.g.
// source_db.raw_records), so that one process backfilling the configured
// tables one after the other keeps each table's series:
//
//	sluice_backfill_rows_read_total{table}       rows read from the source
//	sluice_backfill_chunks_planned{table}        chunks planned so far (the plan is walked lazily)
//	sluice_backfill_chunks_done_total{table}     chunks read and acknowledged
//	sluice_backfill_progress_ratio{table}        share of the planned id range acknowledged (0..1)
//	sluice_backfill_chunk_read_seconds{table}    time to read one chunk
//	sluice_backfill_chunk_retries_total{table}   chunk reads, deliveries and planning queries retried
//	sluice_backfill_chunk_failures_total{table}  chunks that failed for good (after their attempts)
//	sluice_backfill_checkpoint_errors_total{table}  progress saves that failed (the run goes on)
//	sluice_backfill_resumed_ids{table}           ids skipped because an earlier run of the window produced them
package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/schema"
)

// Config says which window of which table to read, and how.
type Config struct {
	Database  string    // source database, e.g. source_db; NewTable sets it from Resolved
	Table     string    // source table, e.g. raw_records; NewTable sets it from Resolved
	Start     time.Time // inclusive
	End       time.Time // exclusive
	ChunkSize uint64    // ids per chunk
	Readers   int       // chunks read in parallel
	// Resolved is the configured table to read (NewTable requires it): the
	// id is its ID column and the window its Window column; a table
	// without a window column is read whole, Start and End zero. Validate
	// checks a Config without it as one for a table with a window.
	Resolved *schema.Table

	ChunkAttempts      int           // tries of one chunk (read and delivery together) before the run fails
	ChunkBackoff       time.Duration // wait before the second try, doubled for each further one, jittered
	CheckpointInterval time.Duration // at most one progress save per interval (with Checkpoints)
	CheckpointTimeout  time.Duration // how long one progress save may take (the last one even when interrupted)
	Restart            bool          // ignore saved progress and read the whole window (progress is still saved)
	// StallTimeout fails the run when the sink acknowledges nothing for
	// this long while chunks wait for it, failed deliveries and their
	// retries included (0: never). A Kafka client does not fail a record
	// it has sent to a broker that died without answering (an idempotent
	// producer cannot know whether it was written), so without it a
	// backfill whose broker is gone waits for ever; and one whose records
	// were never sent fails them one delivery timeout at a time, for each
	// try of each chunk.
	StallTimeout time.Duration
}

// DefaultConfig returns the defaults: 10,000 ids a chunk, one reader per
// core (at least two, so a reader waiting on the network does not idle the
// server), 5 attempts per chunk from 200 ms apart, progress saved at most
// every 500 ms. The window is left for the caller.
func DefaultConfig() Config {
	return Config{
		Database:           "source_db",
		Table:              schema.SourceTable,
		ChunkSize:          10000,
		Readers:            max(2, runtime.NumCPU()),
		ChunkAttempts:      5,
		ChunkBackoff:       200 * time.Millisecond,
		CheckpointInterval: 500 * time.Millisecond,
		CheckpointTimeout:  10 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Resolved != nil && c.Resolved.Window == nil {
		if !c.Start.IsZero() || !c.End.IsZero() {
			return fmt.Errorf("window: table %s has no window column and is read whole: start and end must be unset", c.Resolved.Source)
		}
	} else if err := c.validWindow(); err != nil {
		return err
	}
	switch {
	case c.ChunkSize == 0:
		return errors.New("chunk size must be at least 1")
	case c.Readers < 1:
		return fmt.Errorf("readers must be at least 1, got %d", c.Readers)
	case c.ChunkAttempts < 1:
		return fmt.Errorf("chunk attempts must be at least 1, got %d", c.ChunkAttempts)
	case c.ChunkBackoff < 0:
		return fmt.Errorf("chunk backoff must not be negative, got %s", c.ChunkBackoff)
	case c.CheckpointInterval <= 0:
		return fmt.Errorf("checkpoint interval must be positive, got %s", c.CheckpointInterval)
	case c.CheckpointTimeout <= 0:
		return fmt.Errorf("checkpoint timeout must be positive, got %s", c.CheckpointTimeout)
	}
	if _, err := schema.QuoteIdent(c.Database); err != nil {
		return fmt.Errorf("source database: %w", err)
	}
	if _, err := schema.QuoteIdent(c.Table); err != nil {
		return fmt.Errorf("source table: %w", err)
	}
	return nil
}

func (c Config) validWindow() error {
	switch {
	case c.Start.IsZero() || c.End.IsZero():
		return errors.New("window: start and end are required")
	case !c.End.After(c.Start):
		return fmt.Errorf("window: end %s is not after start %s", c.End.Format(time.DateTime), c.Start.Format(time.DateTime))
	}
	return nil
}

// Progress is a snapshot of a running backfill.
type Progress struct {
	Chunks, ChunksDone int
	IDs, IDsDone       uint64 // planned id range and the part acknowledged
	IDsResumed         uint64 // part of IDsDone an earlier run of the window did (skipped now)
	RowsRead           int64
	RowsAcked          int64
	Retries            int64 // chunk reads and deliveries retried
}

// Backfill reads one window. Create it with NewTable and call Run once.
type Backfill struct {
	cfg     Config
	db      *sql.DB
	sink    ChangeSink
	cp      Checkpoints   // nil: no resume
	epochs  Epochs        // nil: labels in epoch 0
	done    doneSet       // acknowledged ranges, what cp saves
	metrics *tableMetrics // the source table's series
	log     *slog.Logger
	query   [3]string // chunk query with exclusive and inclusive lower bound; next id
	// rangeQuery reads MIN and MAX of the id, over a window's time slice
	// (two arguments), or over the whole table when cfg.Resolved has no
	// window column (none).
	rangeQuery string

	chunks, chunksDone atomic.Int64
	ids, idsDone       atomic.Uint64
	idsResumed         atomic.Uint64
	rowsRead, acked    atomic.Int64
	retries            atomic.Int64
	inFlight           atomic.Int64 // chunks handed to the sink, not yet settled
	lastAck            atomic.Int64 // unix nanoseconds of the last acknowledgement, or of a hand-over after an idle spell
	failing            atomic.Bool  // the last settle was a failed delivery

	// position is the source template of every event, and the binlog
	// position at the start of the run; each chunk's events carry their own
	// label (see labelMode), taken as labels says.
	position    schema.Source
	labels      labelMode
	statusQuery string        // the statement that reads the binlog position, for labelBefore
	afterLabel  func(c Chunk) // tests: runs between taking a chunk's label and reading it
}

// newBackfill builds what NewTable starts from: the checked Config, the
// source, the metrics and the label template.
func newBackfill(cfg Config, db *sql.DB, m *Metrics, log *slog.Logger) (*Backfill, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Backfill{
		cfg: cfg, db: db, metrics: m.table(cfg.Database + "." + cfg.Table), log: log,
		position: schema.Source{Connector: "sluice", Name: "sluice", Snapshot: "true", DB: cfg.Database, Table: cfg.Table},
	}, nil
}

// SetCheckpoints makes Run resume from, and save, the progress kept by cp.
// Call it before Run.
func (b *Backfill) SetCheckpoints(cp Checkpoints) { b.cp = cp }

// Progress reports how far the backfill is.
func (b *Backfill) Progress() Progress {
	return Progress{
		Chunks: int(b.chunks.Load()), ChunksDone: int(b.chunksDone.Load()),
		IDs: b.ids.Load(), IDsDone: b.idsDone.Load(), IDsResumed: b.idsResumed.Load(),
		RowsRead: b.rowsRead.Load(), RowsAcked: b.acked.Load(), Retries: b.retries.Load(),
	}
}

// IDRange returns the smallest and largest id of the rows in the window, and
// false for an empty window. It reads only the timestamp index, every entry
// of the window's range (MIN and MAX of id over a timestamp range have no
// shortcut), so it splits the window into one time slice per reader and
// asks for each slice's range at once on its own connection: the server
// scans the slices side by side (0.43 s against 0.84 s for 5M rows on two
// cores, and the whole run waits for it).
func (b *Backfill) IDRange(ctx context.Context) (lo, hi uint64, ok bool, err error) {
	q := b.rangeQuery
	if b.whole() {
		return b.wholeIDRange(ctx)
	}
	bounds := timeSlices(b.cfg.Start, b.cfg.End, b.cfg.Readers)
	type span struct {
		lo, hi uint64
		ok     bool
	}
	spans := make([]span, len(bounds)-1)
	g, gctx := errgroup.WithContext(ctx)
	for i := range spans {
		g.Go(func() error {
			from, to := bounds[i], bounds[i+1]
			fail := func(err error) error {
				return fmt.Errorf("backfill: id range of %s.%s for [%s, %s): %w",
					b.cfg.Database, b.cfg.Table, from.Format(time.DateTime), to.Format(time.DateTime), err)
			}
			var smn, smx sql.NullString // text keeps the full unsigned range
			if err := b.db.QueryRowContext(gctx, q, from, to).Scan(&smn, &smx); err != nil {
				return fail(err)
			}
			sp := &spans[i]
			var err error
			if sp.lo, sp.hi, sp.ok, err = b.parseIDRange(smn, smx); err != nil {
				return fail(err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, false, err
	}
	for _, sp := range spans {
		switch {
		case !sp.ok:
		case !ok:
			lo, hi, ok = sp.lo, sp.hi, true
		default:
			lo, hi = min(lo, sp.lo), max(hi, sp.hi)
		}
	}
	return lo, hi, ok, nil
}

// parseIDRange reads the MIN and MAX of the id column as unsigned ids.
func (b *Backfill) parseIDRange(smn, smx sql.NullString) (lo, hi uint64, ok bool, err error) {
	if !smn.Valid {
		return 0, 0, false, nil
	}
	if strings.HasPrefix(smn.String, "-") {
		return 0, 0, false, fmt.Errorf("min id %s: the id column %s has negative values, which the keyset chunks cannot split", smn.String, b.cfg.Resolved.ID.Name)
	}
	if lo, err = strconv.ParseUint(smn.String, 10, 64); err != nil {
		return 0, 0, false, fmt.Errorf("min id %q: %w", smn.String, err)
	}
	if hi, err = strconv.ParseUint(smx.String, 10, 64); err != nil {
		return 0, 0, false, fmt.Errorf("max id %q: %w", smx.String, err)
	}
	return lo, hi, true, nil
}

// timeSlices cuts [start, end) into at most n consecutive slices on whole
// seconds (the source's DATETIME has no fraction): the n+1 bounds it returns
// begin with start, end with end and never go down, so the slices cover the
// window exactly once. A window shorter than n seconds gets fewer slices.
func timeSlices(start, end time.Time, n int) []time.Time {
	d := end.Sub(start)
	bounds := []time.Time{start}
	for i := 1; i < n; i++ {
		t := start.Add(d / time.Duration(n) * time.Duration(i)).Truncate(time.Second)
		if t.After(bounds[len(bounds)-1]) && t.Before(end) {
			bounds = append(bounds, t)
		}
	}
	return append(bounds, end)
}

// nextID returns the smallest id at or after from, through the primary key.
// A transient error is retried like a chunk read.
func (b *Backfill) nextID(ctx context.Context, from uint64) (uint64, bool, error) {
	var id sql.NullString // text keeps the full unsigned range
	err := b.withRetry(ctx, "next id", func() error { return b.db.QueryRowContext(ctx, b.query[2], from).Scan(&id) })
	if err != nil {
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

// readChunk reads the window's rows of one chunk into bt and returns the
// source label of its events: the binlog position that matches what it
// read, taken as b.labels says. Its errors name the table and how many of
// the chunk's rows were read; the caller names the chunk.
func (b *Backfill) readChunk(ctx context.Context, c Chunk, bt *tableBatch) (schema.Source, error) {
	t0 := time.Now()
	label := b.position
	label.File, label.Pos = "", 0
	var err error
	switch b.labels {
	case labelSnapshot:
		label, err = b.inSnapshot(ctx, func(_ schema.Source, conn *sql.Conn) error {
			if b.afterLabel != nil {
				b.afterLabel(c)
			}
			return bt.read(ctx, conn, c)
		})
	case labelBefore:
		var ok bool
		if label.File, label.Pos, ok, err = schema.BinlogStatus(ctx, b.db, b.statusQuery); err == nil && !ok {
			err = fmt.Errorf("%s: no binlog position", b.statusQuery)
		}
		if err != nil {
			return label, fmt.Errorf("label %s.%s: %w", b.cfg.Database, b.cfg.Table, err)
		}
		if b.afterLabel != nil {
			b.afterLabel(c)
		}
		err = bt.read(ctx, b.db, c)
	default:
		err = bt.read(ctx, b.db, c)
	}
	if err != nil {
		return label, err
	}
	n := bt.len()
	b.rowsRead.Add(int64(n))
	b.metrics.rowsRead.Add(float64(n))
	b.metrics.chunkRead.Observe(time.Since(t0).Seconds())
	return label, nil
}

// queryer is what a chunk is read through: the pool, or the connection that
// holds the chunk's consistent snapshot.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}
