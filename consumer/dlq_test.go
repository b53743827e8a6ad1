package consumer

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// TestTakeSkipsAcknowledgedDeadLetter: a record whose dead letter this
// member has had acknowledged, back after an offset commit that failed, is
// not dead-lettered again; once a commit covers it, it is forgotten.
func TestTakeSkipsAcknowledgedDeadLetter(t *testing.T) {
	c := &Consumer{cfg: DefaultConfig(), metrics: NewMetrics(nil), log: slog.New(slog.NewTextHandler(io.Discard, nil)), sent: sentSet{}}
	m := c.metrics
	tbl := &schema.Table{Topic: "t", Source: schema.TableName{DB: "s", Table: "x"}, Target: schema.TableName{DB: "d", Table: "x"}}
	e := &tableEntry{t: tbl, name: "d.x", records: m.tableRecords.WithLabelValues("d.x"), decodeDLQ: m.tableDLQ.WithLabelValues("d.x", ReasonDecode)}
	p := &tablePath{c: c, byTopic: map[string]*tableEntry{"t": e}, tables: []*tableEntry{e}}
	b := newBatch(10, time.Second)
	rec := func(off int64) *kgo.Record {
		return &kgo.Record{Topic: "t", Partition: 1, Offset: off, Key: []byte("k"), Value: []byte("not a change event")}
	}
	now := time.Now()
	for _, off := range []int64{4, 5} {
		if err := p.take(context.Background(), b, rec(off), now); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.dead) != 2 || len(e.recs) != 0 {
		t.Fatalf("%d dead letters and %d records to apply, want 2 and 0", len(b.dead), len(e.recs))
	}
	if got, _ := Header(b.dead[0], schema.DLQHeaderReason); got != ReasonDecode {
		t.Errorf("dead letter's reason %q, want %q", got, ReasonDecode)
	}
	c.sent.add(b.dead[0]) // @4 acknowledged; @5 failed
	b.reset()
	for _, off := range []int64{4, 5} {
		if err := p.take(context.Background(), b, rec(off), now); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.dead) != 1 || coordinates(b.dead[0]) != "t/1@5" {
		t.Fatalf("after redelivery: %d dead letters, want only t/1@5's", len(b.dead))
	}
	if b.records != 2 || b.offsets["t"][1].Offset != 6 {
		t.Errorf("the skipped record's offset is not committed with the batch: %d records, next offset %d", b.records, b.offsets["t"][1].Offset)
	}
	c.sent.add(b.dead[0])
	c.sent.committed(map[string]map[int32]kgo.EpochOffset{"t": {1: {Offset: 5}}})
	if c.sent.has(rec(4)) || !c.sent.has(rec(5)) {
		t.Errorf("after a commit at 5: @4 remembered %v (want false), @5 %v (want true)", c.sent.has(rec(4)), c.sent.has(rec(5)))
	}
	if got := strconv.Itoa(len(c.sent)); got != "1" {
		t.Errorf("%s entries left, want 1", got)
	}
}
