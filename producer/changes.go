package producer

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// TableSink produces the change events of one configured table
// (schema.Table) to its topic, through its Producer's client: each record's
// value is schema.AppendChange, its key schema.AppendChangeKey (the table's
// key columns), so every change of one key lands in one partition, in
// order. It is the backfill's ChangeSink for that table.
type TableSink struct {
	p *Producer
	t *schema.Table
}

// ForTable makes sure t's topic exists, creating it with the Producer's
// partitions and replication factor when missing (an existing topic is
// used as it is), and returns the sink of t's changes into it.
func (p *Producer) ForTable(ctx context.Context, t *schema.Table) (*TableSink, error) {
	if t.Topic == "" {
		return nil, fmt.Errorf("table %s: no topic", t.Source)
	}
	if err := createTopic(ctx, p.cl, p.cfg, t.Topic, p.cfg.Partitions, nil, p.log); err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Source, err)
	}
	return &TableSink{p: p, t: t}, nil
}

// Send encodes every change, then produces them. A change that does not
// encode (a row that does not fit the table) fails Send, naming the table,
// before any record is produced: acked is then never called. Otherwise it
// returns once every record is handed to the client (blocking while the
// buffer is full) and calls acked once, after the last acknowledgement,
// with the first delivery error if any. It does not keep changes.
func (s *TableSink) Send(ctx context.Context, changes []schema.Change, acked func(error)) error {
	if len(changes) == 0 {
		acked(nil)
		return nil
	}
	enc, err := encodeChanges(s.t, changes)
	if err != nil {
		enc.release()
		return err
	}
	st := &sendState{acked: acked, p: s.p, enc: enc}
	st.remaining.Store(int64(len(changes)))
	for i := range enc.recs {
		s.p.cl.Produce(ctx, &enc.recs[i], st.promise)
	}
	return nil
}

// encodeChanges encodes changes of t as records of t's topic, cut from
// the shared slabs as encodeRecords does.
func encodeChanges(t *schema.Table, changes []schema.Change) (encoded, error) {
	var e encoded
	if v, ok := recordSlices.Get().(*[]kgo.Record); ok && cap(*v) >= len(changes) {
		e.recs = (*v)[:len(changes)]
	} else {
		e.recs = make([]kgo.Record, len(changes))
	}
	now := time.Now()
	var slab []byte
	var err error
	for i := range changes {
		c := &changes[i]
		if cap(slab)-len(slab) < slabSize/64 {
			p := slabs.Get().(*[]byte)
			e.slabs = append(e.slabs, p)
			slab = (*p)[:0]
		}
		start := len(slab)
		if slab, err = schema.AppendChangeKey(slab, t, c); err != nil {
			return e, fmt.Errorf("topic %s: change %d of %d: %w", t.Topic, i+1, len(changes), err)
		}
		mid := len(slab)
		if slab, err = schema.AppendChange(slab, t, c); err != nil {
			return e, fmt.Errorf("topic %s: change %d of %d: %w", t.Topic, i+1, len(changes), err)
		}
		r := &e.recs[i]
		r.Topic = t.Topic
		r.Key = slab[start:mid:mid]
		r.Value = slab[mid:len(slab):len(slab)]
		r.Timestamp = now
	}
	return e, nil
}
