package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// backfillFlags are `sluice backfill`'s flags for configured tables.
type backfillFlags struct {
	path  string // --config: the tables to backfill ("" : the built-in IoT table)
	table string // --table: only this one of them
}

// configuredBackfill registers --config and --table, and --target-dsn,
// which resolving a configured table needs (its key is the target's).
func (c *command) configuredBackfill() *backfillFlags {
	f := &backfillFlags{}
	c.fs.StringVar(&f.path, "config", "", "the configuration file (YAML) declaring the tables: backfill each into its topic (default: the built-in IoT table, into --topic)")
	c.fs.StringVar(&f.table, "table", "", "backfill only this configured table, named by its source (db.table, or table when unambiguous)")
	c.target()
	return f
}

// pickTables returns the configured tables --table names, or all of them.
func pickTables(tables []*schema.Table, name, desc string) ([]*schema.Table, error) {
	if name == "" {
		return tables, nil
	}
	var picked []*schema.Table
	var known []string
	for _, t := range tables {
		known = append(known, t.Source.String())
		if t.Source.String() == name || (!strings.Contains(name, ".") && t.Source.Table == name) {
			picked = append(picked, t)
		}
	}
	switch len(picked) {
	case 1:
		return picked, nil
	case 0:
		return nil, usagef("--table %s: not a table of %s (its tables: %s)", name, desc, strings.Join(known, ", "))
	}
	return nil, usagef("--table %s: more than one table of %s has that name: name it db.table", name, desc)
}

// backfillConfigured is `sluice backfill [--config FILE] [--table T]`: it
// resolves the configured tables and backfills each, one after the other,
// into its topic: the window's rows for a table with a window column, all
// of its rows for one without. Each table's progress is saved under its own
// key (the table, the window and the topic) in the state topic of --topic,
// and cleared only once every table succeeded, so a failed run started
// again resumes each table where it stopped.
func (s *stage) backfillConfigured(ctx context.Context, c *command, f *backfillFlags) error {
	b, err := s.openBackfills(ctx, c, f)
	if err != nil {
		return err
	}
	defer b.close()
	s.counts = func() stageCounts { r, a := b.rows(); return stageCounts{Read: r, Produced: a} }
	s.ready.Store(true)
	if err := b.run(ctx); err != nil {
		return err
	}
	b.complete(ctx)
	return nil
}

// backfills are the configured tables' backfills of one job, ready to run:
// the tables resolved from the source, the producer, each table's topic
// made, the state store.
type backfills struct {
	s       *stage
	cf      *configured
	tables  []*schema.Table
	bcfg    backfill.Config
	p       *producer.Producer
	st      *producer.State
	metrics *backfill.Metrics
	closers []func()

	cur                 atomic.Pointer[backfill.Backfill]
	doneRead, doneAcked atomic.Int64 // the finished tables' rows
	finished            []*backfill.Backfill
	t0                  time.Time
}

// openBackfills resolves the tables and connects what their backfills
// need, making each table's topic before the first row is read.
func (s *stage) openBackfills(ctx context.Context, c *command, f *backfillFlags) (_ *backfills, err error) {
	b := &backfills{s: s, t0: time.Now()}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.cf, err = openSourceConfigured(ctx, c, f.path); err != nil {
		return nil, inStage("backfill", err)
	}
	b.closers = append(b.closers, b.cf.close)
	all, err := b.cf.resolve(ctx, false)
	if err != nil {
		return nil, err
	}
	if b.tables, err = pickTables(all, f.table, b.cf.desc()); err != nil {
		return nil, err
	}
	b.cf.src.SetMaxOpenConns(s.o.readers + 2)
	b.cf.src.SetMaxIdleConns(s.o.readers + 2)
	if b.bcfg, err = s.backfillConfig(b.cf.rc.SourceDB); err != nil {
		return nil, err
	}
	pcfg, err := s.producerConfig()
	if err != nil {
		return nil, err
	}
	pcfg.Topic = b.tables[0].Topic // the client's default topic; each record names its table's
	if b.p, err = producer.New(ctx, pcfg, s.reg, s.stageLog("producer")); err != nil {
		return nil, inStage("producer", err)
	}
	b.closers = append(b.closers, b.p.Close)
	if b.st, err = s.stateStore(ctx); err != nil {
		return nil, inStage("producer", err)
	}
	if s.jn == nil || s.jn.state != b.st {
		b.closers = append(b.closers, b.st.Close)
	}
	// Before any record: a consumer given no source DSN decodes them by
	// this description.
	if err := storeShapes(ctx, b.st, b.cf.described, b.tables, s.stageLog("producer")); err != nil {
		return nil, inStage("producer", err)
	}
	for _, t := range b.tables { // the topics exist before anything subscribes to them
		if _, err := b.p.ForTable(ctx, t); err != nil {
			return nil, inStage("producer", fmt.Errorf("table %s: %w", t.Source, err))
		}
	}
	b.metrics = backfill.NewMetrics(s.reg) // one set, shared by the tables' runs one after the other
	return b, nil
}

// close closes what openBackfills opened, last first.
func (b *backfills) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// rows are the rows read and acknowledged so far, over every table.
func (b *backfills) rows() (read, acked int64) {
	read, acked = b.doneRead.Load(), b.doneAcked.Load()
	if bf := b.cur.Load(); bf != nil {
		pr := bf.Progress()
		read, acked = read+pr.RowsRead, acked+pr.RowsAcked
	}
	return read, acked
}

// run backfills the tables one after the other, printing each one's
// summary.
func (b *backfills) run(ctx context.Context) error {
	s := b.s
	for i, t := range b.tables {
		tcfg := b.bcfg
		tcfg.Resolved = t
		if t.Window == nil {
			tcfg.Start, tcfg.End = time.Time{}, time.Time{}
		}
		bf, err := s.backfillTable(ctx, tcfg, b.cf, b.p, b.st, b.metrics)
		if err != nil {
			return err
		}
		b.cur.Store(bf)
		label := fmt.Sprintf("%s (%d/%d)", t.Source, i+1, len(b.tables))
		stopProgress := startProgress(func(el time.Duration) string { return label + ": " + bf.Progress().Line(el) })
		tt := time.Now()
		err = inStage("backfill", bf.Run(ctx))
		stopProgress()
		if err == nil {
			err = inStage("producer", b.p.Flush(ctx))
		}
		pr := bf.Progress()
		b.cur.Store(nil)
		b.doneRead.Add(pr.RowsRead)
		b.doneAcked.Add(pr.RowsAcked)
		secs := time.Since(tt).Seconds()
		if err != nil {
			s.log.Error("backfill failed", "table", t.Source.String(), "topic", t.Topic, "rows_read", pr.RowsRead, "rows_produced", pr.RowsAcked,
				"failed_stage", stageOf(err), "where", whereOf(err), "err", err)
			return fmt.Errorf("table %s: %w", t.Source, err)
		}
		b.finished = append(b.finished, bf)
		s.log.Info("backfill summary", "table", t.Source.String(), "topic", t.Topic, "rows_read", pr.RowsRead, "rows_produced", pr.RowsAcked,
			"chunks", pr.Chunks, "resumed_ids", pr.IDsResumed, "retries", pr.Retries, "seconds", round(secs), "rows_per_second", round(float64(pr.RowsAcked)/secs))
		fmt.Printf("backfill: %s%s: %d rows read, %d produced to %s in %d chunks%s, %.1f s, %.0f rows/s\n",
			t.Source, windowNote(t, tcfg), pr.RowsRead, pr.RowsAcked, t.Topic, pr.Chunks, pr.ResumedNote(), secs, float64(pr.RowsAcked)/secs)
	}
	fmt.Printf("backfill: %d table(s), %d rows produced, %.1f s\n", len(b.tables), b.doneAcked.Load(), time.Since(b.t0).Seconds())
	return nil
}

// complete drops every finished table's saved progress: call it once the
// whole job succeeded.
func (b *backfills) complete(ctx context.Context) {
	for _, bf := range b.finished {
		b.s.complete(ctx, bf)
	}
}

// backfillTable builds the backfill of one configured table into its topic,
// its progress keyed by the table, the window and the topic.
func (s *stage) backfillTable(ctx context.Context, cfg backfill.Config, cf *configured, p *producer.Producer, st *producer.State, m *backfill.Metrics) (*backfill.Backfill, error) {
	t := cfg.Resolved
	sink, err := p.ForTable(ctx, t)
	if err != nil {
		return nil, inStage("producer", err)
	}
	blog := s.stageLog("backfill").With("table", t.Source.String())
	bf, err := backfill.NewTable(cfg, cf.src, sink, m, blog)
	if err != nil {
		return nil, usagef("%s: %v", cf.desc(), err)
	}
	bf.SetCheckpoints(&backfill.StateCheckpoints{KV: st, RunID: s.runID, Where: st.Topic(), Log: blog,
		Key: backfill.TableProgressKey(t, cfg.Start, cfg.End)})
	bf.SetEpochs(stateEpochs{st})
	return bf, nil
}

// windowNote says which rows of t a summary line counts.
func windowNote(t *schema.Table, cfg backfill.Config) string {
	if t.Window == nil {
		return " (whole table)"
	}
	return fmt.Sprintf(" [%s, %s) on %s", cfg.Start.Format(time.DateTime), cfg.End.Format(time.DateTime), t.Window.Name)
}
