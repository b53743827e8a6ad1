package backfill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/schema"
)

// Run's steps: plan (the id range, saved progress, labels), read (the
// planner and the readers, under one errgroup), acknowledge (the sink's
// callbacks, which settle chunks or send them back after a backoff) and
// finish (the outcome, the epoch check). Every goroutine a run starts is
// waited for before Run returns: the planner and the readers by the
// errgroup, the delivery retries by the run's retriers, the stall watchdog
// and the checkpoint writer by the functions that stop them. Only the
// sink's own goroutines (its acknowledgements of chunks still in flight
// when a run is interrupted or stalls) outlive it.

// Run reads the window and returns once every row is acknowledged by the
// sink, or on the first chunk that fails for good. An empty window is a
// successful run. With Checkpoints it first loads the window's saved
// progress (unless Restart) and skips the ranges in it.
func (b *Backfill) Run(ctx context.Context) error {
	start := time.Now()
	p, ok, err := b.plan(ctx)
	if err != nil || !ok {
		return err
	}
	b.done.rs = p.saved // the next save keeps what was done before
	finishCheckpoints := b.startCheckpoints(ctx)
	defer finishCheckpoints()
	if err := b.read(ctx, p); err != nil {
		return err
	}
	return b.finish(ctx, start)
}

// plan is what Run reads: the window's id range and the ranges an earlier
// run already produced.
type plan struct {
	lo, hi uint64
	saved  []Range // coalesced
}

// plan finds the window's id range, loads its saved progress and probes how
// chunks are labelled. It returns false for an empty window.
func (b *Backfill) plan(ctx context.Context) (plan, bool, error) {
	var p plan
	var ok bool
	err := b.withRetry(ctx, "id range", func() (err error) {
		p.lo, p.hi, ok, err = b.IDRange(ctx)
		return err
	})
	if err != nil {
		return p, false, err
	}
	if !ok {
		b.log.Info("backfill: window is empty")
		b.metrics.progress.Set(1)
		return p, false, nil
	}
	if b.cp != nil && !b.cfg.Restart {
		if p.saved, err = b.cp.Load(ctx); err != nil {
			return p, false, fmt.Errorf("backfill: load saved progress: %w", err)
		}
		p.saved = Coalesce(p.saved)
	}
	if b.labels == labelUnknown {
		if err := b.detectLabels(ctx); err != nil {
			return p, false, err
		}
	}
	b.ids.Store(p.hi - p.lo + 1)
	b.log.Info("backfill: planned", "min_id", p.lo, "max_id", p.hi, "chunk_size", b.cfg.ChunkSize, "readers", b.cfg.Readers,
		"attempts", b.cfg.ChunkAttempts, "binlog_labels", b.labels.String(), "binlog_file", b.position.File, "binlog_pos", b.position.Pos, "epoch", b.position.Epoch)
	if len(p.saved) > 0 {
		b.log.Info("backfill: resuming from saved progress; skipping the ranges an earlier run produced", "ranges", len(p.saved),
			"first", p.saved[0].String(), "last", p.saved[len(p.saved)-1].String())
	}
	return p, true, nil
}

// work is one chunk on its way through the readers.
type work struct {
	c       Chunk
	covers  Range // the ids the chunk settles: its own, plus the gap or done ids skipped just before it
	attempt int   // tries so far, reads and deliveries together
}

// run is the state Run's read and acknowledge steps share.
type run struct {
	b     *Backfill
	total uint64 // ids in the planned range
	todo  chan work
	retry chan work // chunks whose delivery failed, back from their backoff

	// pending counts the chunks planned and not yet settled (acknowledged,
	// or failed for good), plus one while the planner runs; the planner
	// adds before handing a chunk over, so pending reaching zero means
	// everything settled, and release then closes settled.
	pending atomic.Int64
	settled chan struct{}
	// stalled is closed when the sink stopped answering (watchStall): the
	// chunks in flight will then never settle, and nothing waits for them.
	stalled chan struct{}

	// cancel stops the planner and the readers when a chunk fails for good
	// in an acknowledgement callback, which cannot return an error.
	cancel   context.CancelFunc
	failOnce sync.Once
	failMu   sync.Mutex
	failErr  error

	retriers goroutines // the delivery retries waiting out their backoff
}

// read plans the chunks and reads them with Readers readers, handing each
// to the sink, and returns once every chunk settled, or the run failed,
// stalled or was interrupted; every goroutine it started has ended by then.
func (b *Backfill) read(ctx context.Context, p plan) error {
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	r := &run{b: b, total: p.hi - p.lo + 1, todo: make(chan work), retry: make(chan work),
		settled: make(chan struct{}), stalled: make(chan struct{}), cancel: cancelRun}
	r.pending.Store(1) // the planner's, until it stops

	planner := NewPlanner(p.lo, p.hi, b.cfg.ChunkSize, b.nextID)
	planner.Skip(p.saved)
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return r.feed(gctx, planner) })
	for range b.cfg.Readers {
		g.Go(func() error { return r.readChunks(gctx) })
	}
	stopWatch := b.watchStall(runCtx, r.stall)
	defer stopWatch()
	readErr := g.Wait()
	// gctx is done: a retry in its backoff gives its chunk up at once, and
	// a failed delivery from now on is not retried.
	r.retriers.closeAndWait()
	return r.outcome(ctx, readErr)
}

// outcome waits until every chunk handed to the sink settled (or the sink
// stalled, or ctx is done) and says how the run ended: the failure of an
// acknowledgement first, then the interruption, then the readers' error.
func (r *run) outcome(ctx context.Context, readErr error) error {
	b := r.b
	select {
	case <-r.settled:
	case <-r.stalled:
	case <-ctx.Done():
		return fmt.Errorf("backfill: interrupted with %d of %d chunks acknowledged: %w", b.chunksDone.Load(), b.chunks.Load(), ctx.Err())
	}
	if err := r.failure(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil { // before readErr: a query cut short by the shutdown is not the cause
		return fmt.Errorf("backfill: interrupted with %d of %d chunks acknowledged: %w", b.chunksDone.Load(), b.chunks.Load(), err)
	}
	return readErr
}

// finish checks, after every chunk was acknowledged, that the source's
// version epoch did not change during the run, and logs the run.
func (b *Backfill) finish(ctx context.Context, start time.Time) error {
	if err := b.checkEpoch(ctx); err != nil {
		return err
	}
	b.log.Info("backfill: done", "rows", b.acked.Load(), "chunks", b.chunks.Load(), "resumed_ids", b.idsResumed.Load(),
		"retries", b.retries.Load(), "seconds", time.Since(start).Seconds())
	return nil
}

// feed walks the plan and hands each chunk to the readers, counting it
// pending first; it closes todo and gives up its own count when done.
func (r *run) feed(ctx context.Context, planner *Planner) error {
	b := r.b
	defer r.release()
	defer close(r.todo)
	for {
		from := planner.Pos()
		c, skipped, ok, err := planner.Next(ctx)
		if res := planner.Resumed(); res != b.idsResumed.Load() {
			b.metrics.resumedIDs.Add(float64(res - b.idsResumed.Load()))
			b.idsResumed.Store(res)
		}
		if err != nil {
			return err
		}
		r.idsDone(skipped)
		if !ok {
			return nil
		}
		b.chunks.Add(1)
		b.metrics.chunksPlanned.Inc()
		r.pending.Add(1)
		select {
		case r.todo <- work{c: c, covers: Range{Lo: from, Hi: c.Hi}}:
		case <-ctx.Done():
			r.release()
			return nil
		}
	}
}

// errStopping is readTries' word that the run is stopping: the reader
// returns nil, and whoever stopped the run says why.
var errStopping = errors.New("backfill: stopping")

// readChunks is one reader: it takes chunks, new ones and those sent back
// after a failed delivery, reads them and hands them to the sink, until
// every chunk settled or the run stops.
func (r *run) readChunks(ctx context.Context) error {
	bt := newTableBatch(r.b)
	in := r.todo
	for {
		var w work
		select {
		case w = <-r.retry:
		case next, open := <-in:
			if !open {
				in = nil // keep serving retries until everything settled
				continue
			}
			w = next
		case <-r.settled:
			return nil
		case <-ctx.Done():
			return nil
		}
		label, err := r.readTries(ctx, &w, bt)
		if err != nil {
			r.release()
			if errors.Is(err, errStopping) {
				return nil
			}
			return err
		}
		if err := r.send(ctx, w, bt, label); err != nil {
			return err
		}
	}
}

// readTries reads w's chunk into bt, again after a transient error, up
// to ChunkAttempts tries in all (counted in w). It returns a ChunkError
// when the chunk fails for good, and errStopping when the run stops.
func (r *run) readTries(ctx context.Context, w *work, bt *tableBatch) (schema.Source, error) {
	b := r.b
	for {
		w.attempt++
		label, err := b.readChunk(ctx, w.c, bt)
		if err == nil {
			return label, nil
		}
		if ctx.Err() != nil {
			return label, errStopping
		}
		if w.attempt >= b.cfg.ChunkAttempts || !transientRead(err) {
			return label, r.chunkFailed(*w, err)
		}
		b.retries.Add(1)
		b.metrics.chunkRetries.Inc()
		b.log.Warn("backfill: chunk read failed; reading it again", "chunk", w.c.String(), "attempt", w.attempt,
			"of", b.cfg.ChunkAttempts, "err", err)
		if sleep(ctx, b.backoff(w.attempt)) != nil {
			return label, errStopping
		}
	}
}

// send hands w's rows in bt, labelled src, to the sink, whose callback
// acknowledges the chunk. A sink that refuses them fails the run: it will
// not call back.
func (r *run) send(ctx context.Context, w work, bt *tableBatch, src schema.Source) error {
	b := r.b
	n := int64(bt.len())
	if b.inFlight.Add(1) == 1 && !b.failing.Load() {
		// The wait starts now: time with nothing in flight is not a
		// stall (a retry after failed deliveries is).
		b.lastAck.Store(time.Now().UnixNano())
	}
	if err := bt.send(ctx, src, func(err error) { r.acknowledge(ctx, w, n, err) }); err != nil {
		b.inFlight.Add(-1)
		r.release() // the sink did not take the chunk: acked will not be called
		return r.chunkFailed(w, err)
	}
	return nil
}

// acknowledge is the sink's answer to one try of a chunk. It runs on the
// sink's goroutine and must not block: a failed delivery goes back to the
// readers after its backoff through one of the run's retriers, which
// settles the chunk itself if the run stops first.
func (r *run) acknowledge(ctx context.Context, w work, n int64, err error) {
	b := r.b
	b.inFlight.Add(-1)
	if err == nil {
		b.lastAck.Store(time.Now().UnixNano())
	}
	b.failing.Store(err != nil)
	switch {
	case err == nil:
		b.acked.Add(n)
		b.chunksDone.Add(1)
		b.metrics.chunksDone.Inc()
		r.idsDone(w.c.Span())
		b.done.add(w.covers)
		r.release()
	case ctx.Err() != nil: // the run is stopping; whoever stopped it says why
		r.release()
	case w.attempt < b.cfg.ChunkAttempts && retriableDelivery(err):
		b.retries.Add(1)
		b.metrics.chunkRetries.Inc()
		b.log.Warn("backfill: chunk delivery failed; producing it again", "chunk", w.c.String(), "attempt", w.attempt,
			"of", b.cfg.ChunkAttempts, "err", err)
		if !r.retriers.Go(func() { r.retryDelivery(ctx, w) }) {
			r.release() // the run has stopped
		}
	default:
		r.fail(r.chunkFailed(w, fmt.Errorf("delivery: %w", err)))
		r.release()
	}
}

// retryDelivery sends w back to the readers after its backoff, or settles
// it when the run stops first.
func (r *run) retryDelivery(ctx context.Context, w work) {
	if sleep(ctx, r.b.backoff(w.attempt)) == nil {
		select {
		case r.retry <- w: // the readers own it again
			return
		case <-ctx.Done():
		}
	}
	r.release()
}

// release settles one chunk (or ends the planner's count): the last one
// closes settled.
func (r *run) release() {
	if r.pending.Add(-1) == 0 {
		close(r.settled)
	}
}

// idsDone counts n more ids of the planned range as done.
func (r *run) idsDone(n uint64) {
	done := r.b.idsDone.Add(n)
	r.b.metrics.progress.Set(float64(done) / float64(r.total))
}

// chunkFailed counts a chunk that failed for good and names it.
func (r *run) chunkFailed(w work, err error) error {
	r.b.metrics.chunkFailures.Inc()
	return &ChunkError{Chunk: w.c, Attempts: w.attempt, Err: err}
}

// fail stops the run with err, unless it already failed.
func (r *run) fail(err error) {
	r.failOnce.Do(func() {
		r.failMu.Lock()
		r.failErr = err
		r.failMu.Unlock()
	})
	r.cancel()
}

// failure is the error fail recorded first, if any.
func (r *run) failure() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.failErr
}

// stall fails the run because the sink stopped answering (watchStall).
func (r *run) stall(err error) {
	r.fail(err)
	close(r.stalled)
}

// goroutines starts goroutines and waits for them. Once closed, it starts
// no more: Go then returns false and the caller does the work's cleanup.
type goroutines struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Go starts f unless g is closed, and reports whether it did.
func (g *goroutines) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Go(f)
	return true
}

// closeAndWait stops g from starting more and waits for those it started.
func (g *goroutines) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// watchStall fails the run (through stall) when chunks wait for the sink's
// acknowledgement and none has come for StallTimeout. It returns the
// function that stops it and waits for it.
func (b *Backfill) watchStall(ctx context.Context, stall func(error)) (stop func()) {
	if b.cfg.StallTimeout <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(min(b.cfg.StallTimeout/4, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n := b.inFlight.Load()
			if n == 0 {
				continue
			}
			if since := time.Since(time.Unix(0, b.lastAck.Load())); since >= b.cfg.StallTimeout {
				stall(fmt.Errorf("backfill: Kafka acknowledged nothing for %s while chunks waited for it (%d in flight, %d of %d chunks acknowledged, %d deliveries retried): the brokers are gone or not answering",
					since.Truncate(time.Second), n, b.chunksDone.Load(), b.chunks.Load(), b.retries.Load()))
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}
