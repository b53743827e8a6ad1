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

// backfillConfigured is `sluice backfill --config FILE [--table T]`: it
// resolves the configured tables and backfills each, one after the other,
// into its topic: the window's rows for a table with a window column, all
// of its rows for one without. Each table's progress is saved under its own
// key (the table, the window and the topic) in the state topic of --topic,
// and cleared only once every table succeeded, so a failed run started
// again resumes each table where it stopped.
func (s *stage) backfillConfigured(ctx context.Context, c *command, f *backfillFlags) error {
	t0 := time.Now()
	cf, err := openSourceConfigured(ctx, c, f.path)
	if err != nil {
		return inStage("backfill", err)
	}
	defer cf.close()
	all, err := cf.resolve(ctx, false)
	if err != nil {
		return err
	}
	tables, err := pickTables(all, f.table, cf.desc())
	if err != nil {
		return err
	}
	cf.src.SetMaxOpenConns(s.o.readers + 2)
	cf.src.SetMaxIdleConns(s.o.readers + 2)
	bcfg, err := s.backfillConfig(cf.rc.SourceDB)
	if err != nil {
		return err
	}
	pcfg, err := s.producerConfig()
	if err != nil {
		return err
	}
	pcfg.Topic = tables[0].Topic // the client's default topic; each record names its table's
	p, err := producer.New(ctx, pcfg, s.reg, s.stageLog("producer"))
	if err != nil {
		return inStage("producer", err)
	}
	defer p.Close()
	st, err := s.stateStore(ctx)
	if err != nil {
		return inStage("producer", err)
	}
	if s.jn == nil || s.jn.state != st {
		defer st.Close()
	}
	// Before any record: a consumer given no source DSN decodes them by
	// this description.
	if err := storeShapes(ctx, st, cf.described, tables, s.stageLog("producer")); err != nil {
		return inStage("producer", err)
	}
	metrics := backfill.NewMetrics(s.reg) // one set, shared by the tables' runs one after the other
	var cur atomic.Pointer[backfill.Backfill]
	var doneRead, doneAcked atomic.Int64 // the finished tables' rows
	s.counts = func() stageCounts {
		r, a := doneRead.Load(), doneAcked.Load()
		if bf := cur.Load(); bf != nil {
			pr := bf.Progress()
			r, a = r+pr.RowsRead, a+pr.RowsAcked
		}
		return stageCounts{Read: r, Produced: a}
	}
	s.ready.Store(true)
	var finished []*backfill.Backfill
	for i, t := range tables {
		tcfg := bcfg
		tcfg.Resolved = t
		if t.Window == nil {
			tcfg.Start, tcfg.End = time.Time{}, time.Time{}
		}
		bf, err := s.backfillTable(ctx, tcfg, cf, p, st, metrics)
		if err != nil {
			return err
		}
		cur.Store(bf)
		label := fmt.Sprintf("%s (%d/%d)", t.Source, i+1, len(tables))
		stopProgress := startProgress(func(el time.Duration) string { return label + ": " + bf.Progress().Line(el) })
		tt := time.Now()
		err = inStage("backfill", bf.Run(ctx))
		stopProgress()
		if err == nil {
			err = inStage("producer", p.Flush(ctx))
		}
		pr := bf.Progress()
		cur.Store(nil)
		doneRead.Add(pr.RowsRead)
		doneAcked.Add(pr.RowsAcked)
		secs := time.Since(tt).Seconds()
		if err != nil {
			s.log.Error("backfill failed", "table", t.Source.String(), "topic", t.Topic, "rows_read", pr.RowsRead, "rows_produced", pr.RowsAcked,
				"failed_stage", stageOf(err), "where", whereOf(err), "err", err)
			return fmt.Errorf("table %s: %w", t.Source, err)
		}
		finished = append(finished, bf)
		s.log.Info("backfill summary", "table", t.Source.String(), "topic", t.Topic, "rows_read", pr.RowsRead, "rows_produced", pr.RowsAcked,
			"chunks", pr.Chunks, "resumed_ids", pr.IDsResumed, "retries", pr.Retries, "seconds", round(secs), "rows_per_second", round(float64(pr.RowsAcked)/secs))
		fmt.Printf("backfill: %s%s: %d rows read, %d produced to %s in %d chunks%s, %.1f s, %.0f rows/s\n",
			t.Source, windowNote(t, tcfg), pr.RowsRead, pr.RowsAcked, t.Topic, pr.Chunks, pr.ResumedNote(), secs, float64(pr.RowsAcked)/secs)
	}
	for _, bf := range finished {
		s.complete(ctx, bf)
	}
	fmt.Printf("backfill: %d table(s), %d rows produced, %.1f s\n", len(tables), doneAcked.Load(), time.Since(t0).Seconds())
	return nil
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
