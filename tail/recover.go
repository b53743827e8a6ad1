package tail

// Recovery from a purged binlog. When the binlog after the stored position
// is gone, the changes in it are in no stream: only a backfill can bring
// them, and it reads the rows as they are when it runs. The order of the two
// steps decides whether anything is lost:
//
//   - backfill first, then restart the tail from now: a change committed
//     after the backfill read its rows and before the restart is in neither
//     (the 50 lost rows);
//   - restart the tail from now first, then backfill: every change after
//     the restart is in the binlog the tail reads, every one before it is
//     in the backfill, and the two meet safely in the target (a backfill read
//     older than a tail change loses to it, README "Safe beside a backfill").
//
// --recover-purged does the first step itself, in that order: it commits the
// current binlog position as the tail's new start, together with a record of
// the gap (tail/<name>/gap: the position lost, the new start, and the time
// window to backfill), then streams. The backfill of the window is the one
// step left, and any time later is safe.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Gap is the part of the binlog a tail lost to a purge, and the window of
// source commit times a backfill must cover to bring its changes back.
type Gap struct {
	Lost    Position  `json:"lost"`           // the stored position, no longer on the source
	Resumed Position  `json:"resumed"`        // where the tail streams from instead
	Oldest  string    `json:"oldest"`         // the oldest binlog file the source had
	Since   time.Time `json:"since"`          // the gap's first commit time is not before this; zero: unknown
	Until   time.Time `json:"until"`          // every change after this is streamed by the tail
	Done    bool      `json:"done,omitempty"` // its backfill finished (GapBackfilled)
}

// BackfillCommand is the command that backfills the gap, for an event log
// whose rows' timestamp is their write time: the window [Since, Until) in
// UTC (the backfill reads it in --tz). Rows written in the gap with older
// timestamps, updates of older rows and deletes are outside it: widen the
// window to what the writers touch, and `sluice verify` finds what is left.
// Empty when Since is unknown.
func (g Gap) BackfillCommand() string {
	if g.Since.IsZero() {
		return ""
	}
	return fmt.Sprintf("sluice backfill --start-at '%s' --end-at '%s'", g.Since.UTC().Format(time.RFC3339), g.Until.UTC().Format(time.RFC3339))
}

// GapKey is the state-topic key of the gap a tail recovered from.
func GapKey(name string) string { return PositionKey(name) + "/gap" }

// Gap returns the gap this tail recovered from at start (--recover-purged),
// or one an earlier start recovered from whose backfill is not recorded as
// done; nil when there is none.
func (t *Tail) Gap() *Gap { return t.gap }

// GapBackfilled records that the gap's backfill finished, so that a later
// start does not run it again.
func (t *Tail) GapBackfilled(ctx context.Context) error {
	if t.gap == nil {
		return nil
	}
	g := *t.gap
	g.Done = true
	b, _ := json.Marshal(g)
	if err := t.st.Put(ctx, GapKey(t.cfg.Name), b); err != nil {
		return fmt.Errorf("record the gap after %s as backfilled: %w", g.Lost, err)
	}
	t.gap = nil
	return nil
}

// pendingGap reads a gap an earlier start recovered from whose backfill is
// not recorded as done: a tail stopped during that backfill.
func (t *Tail) pendingGap(ctx context.Context) (*Gap, error) {
	b, found, err := t.st.Get(ctx, GapKey(t.cfg.Name))
	if err != nil || !found || len(b) == 0 {
		return nil, err
	}
	var g Gap
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("stored gap %s %q: %w", GapKey(t.cfg.Name), b, err)
	}
	if g.Done {
		return nil, nil
	}
	return &g, nil
}

// binlogKept reports whether the source still has the binlog file, and
// names its oldest one.
func binlogKept(ctx context.Context, db *sql.DB, file string) (kept bool, oldest string, err error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return false, "", fmt.Errorf("source: SHOW BINARY LOGS: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		var name string
		vals := make([]any, len(cols))
		vals[0] = &name
		for i := 1; i < len(cols); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			return false, "", fmt.Errorf("source: SHOW BINARY LOGS: %w", err)
		}
		if oldest == "" {
			oldest = name
		}
		if name == file {
			kept = true
		}
	}
	return kept, oldest, rows.Err()
}

// sourceClock reads the source's clock, the one its binlog timestamps use.
func sourceClock(ctx context.Context, db *sql.DB) (time.Time, error) {
	var us int64
	if err := db.QueryRowContext(ctx, "SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)").Scan(&us); err != nil {
		return time.Time{}, fmt.Errorf("source: read the clock: %w", err)
	}
	return time.UnixMicro(us).UTC(), nil
}

// recoverPurged makes the tail stream from the binlog's end instead of the
// purged position lost, committing the new start and the gap together
// before any event, and returns the new start.
func (t *Tail) recoverPurged(ctx context.Context, lost Position, oldest string) (Position, error) {
	now, err := currentPosition(ctx, t.db, t.srv) // sets TsMs from the source's clock
	if err != nil {
		return Position{}, err
	}
	// The binlog's numbering may have started again (a reset or a rebuilt
	// server loses the old binlog too): a new epoch keeps versions growing.
	if now, err = t.follow(ctx, now, "the tail recovered from a purged binlog (--recover-purged)"); err != nil {
		return Position{}, err
	}
	now = t.withShapes(now)
	// Every change before the new start committed before the clock read
	// after it; the window ends past that second (whole seconds: a row
	// stamped in that second is in it).
	after, err := sourceClock(ctx, t.db)
	if err != nil {
		return Position{}, err
	}
	g := &Gap{Lost: lost, Resumed: now, Oldest: oldest, Until: after.Truncate(time.Second).Add(time.Second)}
	if lost.TsMs > 0 {
		// A change after the lost position commits after the last one
		// carried, but its rows may be stamped earlier, when its
		// transaction began: the window starts RecoverMargin before.
		g.Since = time.UnixMilli(lost.TsMs).UTC().Truncate(time.Second).Add(-t.cfg.RecoverMargin)
	}
	gap, _ := json.Marshal(g)
	if err := t.storeAll(ctx,
		&kgo.Record{Topic: t.st.Topic(), Key: []byte(PositionKey(t.cfg.Name)), Value: now.encode()},
		&kgo.Record{Topic: t.st.Topic(), Key: []byte(GapKey(t.cfg.Name)), Value: gap},
	); err != nil {
		return Position{}, fmt.Errorf("kafka: store the recovery start %s and the gap after %s: %w", now, lost, err)
	}
	t.gap = g
	args := []any{"lost", lost.String(), "oldest_binlog", oldest, "streaming_from", now.String(), "gtid", now.GTID}
	if cmd := g.BackfillCommand(); cmd != "" {
		args = append(args, "since", g.Since.Format(time.RFC3339), "until", g.Until.Format(time.RFC3339), "backfill", cmd)
	} else {
		args = append(args, "since", "unknown (the stored position has no commit time)")
	}
	t.log.Warn("tail: --recover-purged: the stored binlog position is purged; streaming from the binlog's end, committed before any event. "+
		"Now backfill the gap's windows (safe beside the running tail)", args...)
	return now, nil
}

// storeAll writes records to the state topic in one transaction.
func (t *Tail) storeAll(ctx context.Context, recs ...*kgo.Record) error {
	if err := t.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	for _, r := range recs {
		t.cl.Produce(ctx, r, t.promise)
	}
	return t.endTransaction(ctx)
}

// WriteNotice tells an operator the one step left of a recovery from a
// purged binlog: the tail already streams from now, so the backfill of the
// gap is safe whenever it runs. auto: the tail's process runs it.
func (g *Gap) WriteNotice(w io.Writer, auto bool) {
	fmt.Fprintf(w, "tail: the binlog after %s is purged (the source's oldest is %s); streaming from %s, committed before any event\n",
		g.Lost.String(), g.Oldest, g.Resumed.String())
	if cmd := g.BackfillCommand(); cmd != "" && auto {
		fmt.Fprintf(w, "tail: the changes committed after it, up to %s, are not in Kafka; this process backfills their window now, beside the tail (it starts --recover-margin before the last commit carried); the same by hand, or wider:\n  %s\n",
			g.Until.Format(time.RFC3339), cmd)
	} else if cmd != "" {
		fmt.Fprintf(w, "tail: the changes committed after it, up to %s, are not in Kafka; backfill their window now (safe beside this tail; it starts --recover-margin before the last commit carried):\n  %s\n",
			g.Until.Format(time.RFC3339), cmd)
	} else {
		fmt.Fprintf(w, "tail: changes committed after %s up to %s are not in Kafka; the stored position has no commit time: backfill every window changed since the tail last ran (safe beside this tail)\n",
			g.Lost.String(), g.Until.Format(time.RFC3339))
	}
	fmt.Fprintln(w, "tail: the window holds rows by their timestamp: widen it to what the writers touched in the gap; deletes in the gap are in no backfill, `sluice verify` finds the rows they left")
}

// RunFillingGap runs the tail as Run does, with fill backfilling the gap it
// recovered from (Gap) beside it: the tail already streams every change
// after the gap, so the gap's backfill is safe whenever it runs. If fill
// fails, the tail stops too and RunFillingGap returns fill's error (unless
// ctx ended first): the gap stays recorded, and the next start backfills it
// again. fill marks the gap done (GapBackfilled) when it succeeds.
// RunFillingGap waits for both.
func (t *Tail) RunFillingGap(ctx context.Context, fill func(context.Context, *Gap) error) error {
	g := t.Gap()
	if g == nil {
		return t.Run(ctx)
	}
	return runBeside(ctx, t.Run, func(ctx context.Context) error { return fill(ctx, g) })
}

// runBeside runs run with side beside it, and waits for both. side failing
// stops run (through its ctx) and is then the error, unless ctx ended
// first; run ending stops side.
func runBeside(ctx context.Context, run, side func(context.Context) error) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var sideErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if sideErr = side(runCtx); sideErr != nil {
			cancel()
		}
	}()
	err := run(runCtx)
	cancel()
	wg.Wait()
	if err == nil && sideErr != nil && ctx.Err() == nil {
		err = sideErr
	}
	return err
}
