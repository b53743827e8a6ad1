package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// tablePath is what a member does with its records between the poll and
// the offset commit (take, apply): every configured table's topic, each
// record decoded with its table's ChangeDecoder into the table's share of
// the batch (or set aside as a dead letter), and applied by its table's
// TableWriter. Everything else — the Run loop, the linger, the dead
// letters' sending, the offset commit after the database commit,
// membership — is the Consumer's. A batch (BatchSize records across the
// tables, as polled) is written one table per transaction, retried on
// transient errors, with the rows the target refuses isolated into dead
// letters (isolate.go); the batch's offsets are committed after the last of them
// and after the dead letters are acknowledged. A crash between two of them
// delivers the whole batch again, whose changes apply as the same
// versioned upserts.
type tablePath struct {
	c       *Consumer
	db      *sql.DB
	byTopic map[string]*tableEntry
	tables  []*tableEntry // in configuration order: the order of the transactions
}

// tableEntry is one table's share of the batch and what applies it.
type tableEntry struct {
	t    *schema.Table
	name string // the target, "db.table": the metrics' table label
	w    *TableWriter
	dec  schema.ChangeDecoder

	buf     []byte           // the decoded values, which the changes alias
	changes []*schema.Change // reused between batches
	recs    []TableRecord
	krecs   []*kgo.Record // recs[i]'s Kafka record, for its dead letter

	records, upserted, deleted, decodeDLQ, ruleDLQ, dbDLQ prometheus.Counter
}

// validateTables checks the table-driven settings: every table has a
// topic of its own, which is not the dead-letter topic.
func (c Config) validateTables() error {
	seen := map[string]schema.TableName{}
	for i, t := range c.Tables {
		switch {
		case t == nil:
			return fmt.Errorf("tables[%d]: not resolved", i)
		case t.Topic == "":
			return fmt.Errorf("table %s: no topic", t.Target)
		case t.Topic == c.DeadLetterTopic():
			return fmt.Errorf("table %s: its topic %s is the dead-letter topic", t.Target, t.Topic)
		}
		if other, ok := seen[t.Topic]; ok {
			return fmt.Errorf("tables %s and %s: both read topic %s; a topic feeds one table", other, t.Target, t.Topic)
		}
		seen[t.Topic] = t.Target
	}
	return nil
}

// newTablePath builds a TableWriter for every table of c's Config, which
// checks that its target is ready.
func newTablePath(ctx context.Context, c *Consumer, db *sql.DB) (*tablePath, error) {
	p := &tablePath{c: c, db: db, byTopic: map[string]*tableEntry{}}
	m := c.metrics
	for _, t := range c.cfg.Tables {
		w, err := NewTableWriter(ctx, db, t)
		if err != nil {
			return nil, err
		}
		if err := p.useBulkInsert(ctx, w); err != nil {
			return nil, err
		}
		name := t.Target.String()
		e := &tableEntry{t: t, name: name, w: w,
			records:   m.tableRecords.WithLabelValues(name),
			upserted:  m.tableUpserted.WithLabelValues(name),
			deleted:   m.tableDeleted.WithLabelValues(name),
			decodeDLQ: m.tableDLQ.WithLabelValues(name, ReasonDecode),
			ruleDLQ:   m.tableDLQ.WithLabelValues(name, ReasonValidation),
			dbDLQ:     m.tableDLQ.WithLabelValues(name, ReasonDatabase),
		}
		p.byTopic[t.Topic] = e
		p.tables = append(p.tables, e)
	}
	return p, nil
}

// useBulkInsert lets w send new rows as MariaDB bulk inserts when the
// target's pool dials through a Wire, and logs
// why not otherwise.
func (p *tablePath) useBulkInsert(ctx context.Context, w *TableWriter) error {
	c, name := p.c, w.t.Target.String()
	if c.cfg.Wire == nil || c.cfg.NoBulkLoad {
		return nil
	}
	why, err := w.UseBulkInsert(ctx, c.cfg.Wire)
	if err != nil {
		return err
	}
	if why != "" {
		c.log.Info("consumer: new rows go through the upsert, without MariaDB's bulk insert", "table", name, "why", why)
		return nil
	}
	w.bulk.gone = func(why string) {
		c.log.Warn("consumer: new rows go through the upsert, without MariaDB's bulk insert", "table", name, "why", why)
	}
	w.bulk.done = func(kept bool) {
		if kept {
			c.metrics.bulkInserts.Inc()
		} else {
			c.metrics.loadFallbacks.Inc()
		}
	}
	return nil
}

// topics are the tables' topics, in configuration order.
func (p *tablePath) topics() []string {
	out := make([]string, len(p.tables))
	for i, e := range p.tables {
		out[i] = e.t.Topic
	}
	return out
}

// take decodes r with its topic's table. A record that does not decode is
// a dead letter (reason decode); a tombstone or a transaction marker only
// moves the offset.
func (p *tablePath) take(_ context.Context, b *batch, r *kgo.Record, now time.Time) error {
	if r.Attrs.IsControl() {
		b.mark(r, now)
		return nil
	}
	c := p.c
	c.metrics.records.Inc()
	e := p.byTopic[r.Topic]
	if e == nil { // the client fetches only the subscribed topics
		return fmt.Errorf("consumer: group %s: record %s/%d@%d of a topic no configured table reads", c.cfg.Group, r.Topic, r.Partition, r.Offset)
	}
	e.records.Inc()
	if len(r.Value) == 0 {
		b.add(r, now)
		return nil
	}
	n := len(e.recs)
	if n == len(e.changes) {
		e.changes = append(e.changes, new(schema.Change))
	}
	ch := e.changes[n]
	buf, err := e.dec.Parse(e.buf, e.t, r.Value, ch)
	if err != nil {
		if c.setAside(b, r, ReasonDecode, err, now) {
			e.decodeDLQ.Inc()
		}
		return nil
	}
	e.buf = buf
	e.recs = append(e.recs, TableRecord{Change: ch, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset})
	e.krecs = append(e.krecs, r)
	b.add(r, now)
	return nil
}

// apply writes each table's records in transactions of its own, in
// configuration order, each retried on transient errors (retryTx); a
// record the target refuses is isolated (isolate) and dead-lettered
// (reason database), and a record a transform or a rule refuses is left
// out by the writer and dead-lettered (reason validation), while the rest
// of the table's records commit. It returns what the writes did to the
// targets, as Stats counts rows.
func (p *tablePath) apply(ctx context.Context, b *batch) (Stats, []*kgo.Record, error) {
	c := p.c
	var sum Stats
	var late []*kgo.Record
	for _, e := range p.tables {
		if len(e.recs) == 0 {
			continue
		}
		err := isolate(ctx, c.metrics, 0, len(e.recs), func(lo, hi int) error {
			res, err := p.write(ctx, e, lo, hi)
			if err != nil {
				return err
			}
			for _, rj := range res.Rejected {
				if dl := c.letter(e.krecs[lo+rj.Record], ReasonValidation, rj.Err, time.Now()); dl != nil {
					late = append(late, dl)
					e.ruleDLQ.Inc()
				}
			}
			e.upserted.Add(float64(res.Inserted + res.Updated))
			e.deleted.Add(float64(res.Deleted))
			c.metrics.truncates.Add(float64(res.Truncates))
			sum.Add(Stats{Upserted: int64(res.Inserted + res.Updated), Inserted: int64(res.Inserted),
				Merged: int64(res.Merged + res.Updated + res.Unchanged), Unchanged: int64(res.Unchanged),
				Deleted: int64(res.Deleted), Tombstoned: int64(res.Tombstoned + res.Truncated)})
			return nil
		}, func(i int, err error) {
			err = refusedError(e.name, e.w.keyOf(e.recs[i].Change), err)
			if dl := c.letter(e.krecs[i], ReasonDatabase, err, time.Now()); dl != nil {
				late = append(late, dl)
				e.dbDLQ.Inc()
			}
		})
		if err != nil {
			return Stats{}, nil, err
		}
		e.reset()
	}
	return sum, late, nil
}

// write applies the table's records lo..hi in one transaction, retried on
// transient errors.
func (p *tablePath) write(ctx context.Context, e *tableEntry, lo, hi int) (res TableResult, err error) {
	m := p.c.metrics
	cfg := &p.c.cfg
	err = retryTx(ctx, cfg.DBAttempts, cfg.DBBackoff, m, fmt.Sprintf("table %s: write batch of %d records", e.name, hi-lo),
		func() {}, func() (err error) {
			t0 := time.Now()
			res, err = e.w.Write(ctx, e.recs[lo:hi])
			if err == nil {
				m.commitSeconds.Observe(time.Since(t0).Seconds())
			}
			return err
		})
	return res, err
}

// reset empties the table's share of the batch, keeping its buffers.
func (e *tableEntry) reset() {
	clear(e.krecs)
	e.recs, e.krecs, e.buf = e.recs[:0], e.krecs[:0], e.buf[:0]
}
