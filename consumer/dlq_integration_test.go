package consumer

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// runUntilCaughtUp runs c until its group has committed everything on the
// topic, then stops it. A member that stops by itself first fails the test
// with its error: that is a record stopping the group.
func (w *world) runUntilCaughtUp(c *Consumer) {
	w.t.Helper()
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	ends, err := EndOffsets(w.ctx, w.adm, w.topic)
	if err != nil {
		w.t.Fatal(err)
	}
	waitCtx, stopWait := context.WithCancel(w.ctx)
	caught := make(chan error, 1)
	go func() { caught <- WaitCaughtUp(waitCtx, w.adm, w.group, w.topic, ends, 20*time.Millisecond) }()
	select {
	case err := <-done:
		stopWait()
		<-caught
		w.t.Fatalf("the member stopped before the group caught up: %v", err)
	case err := <-caught:
		stopWait()
		cancel()
		runErr := <-done
		if err != nil {
			w.t.Fatal(err)
		}
		if runErr != nil {
			w.t.Fatalf("Run: %v", runErr)
		}
	}
}

// deadLetters reads the whole dead-letter topic.
func (w *world) deadLetters(topic string) []*kgo.Record {
	w.t.Helper()
	ends, err := EndOffsets(w.ctx, w.adm, topic)
	if err != nil {
		w.t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(4<<20))
	if err != nil {
		w.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < int(ends[0]) {
		fs := cl.PollFetches(w.ctx)
		if w.ctx.Err() != nil {
			w.t.Fatalf("read %d of %d dead letters", len(out), ends[0])
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// TestIntegrationTransformOutgrowsColumn: a message that fits the source's
// TEXT column (60,000 bytes of ɐ) is 90,000 bytes upper-cased (Ɐ), over the
// target's TEXT (65,535 bytes). It goes to the dead-letter topic naming the
// record, the column, its size and the limit, and the rest of its batch
// lands; before, the insert failed with error 1406 on every attempt and
// held back the batch.
func TestIntegrationTransformOutgrowsColumn(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_grow", 1)
	ctx, database, topic, group := w.ctx, w.database, w.topic, w.group
	row := func(i int, msg string) []byte {
		r := testRow(i, "sensor-ok")
		if msg != "" {
			r.Message = sql.NullString{String: msg, Valid: true}
		}
		v, _ := schema.EncodeEvent(&schema.Event{After: r, Op: schema.OpCreate})
		return v
	}
	legal := strings.Repeat("ɐ", 30000) // 60,000 bytes, 30,000 characters
	fits := strings.Repeat("ɐ", 21845)  // 43,690 bytes; 65,535 upper-cased: exactly the limit
	values := [][]byte{row(0, ""), row(1, legal), row(2, ""), row(3, fits), row(4, "")}
	const growsAt = 1
	for i, v := range values {
		if err := w.kcl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database, cfg.Linger = []string{brokers}, topic, group, database, 100*time.Millisecond
	m := NewMetrics(prometheus.NewRegistry())
	c, err := New(ctx, cfg, db, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.runUntilCaughtUp(c)

	var n, atLimit int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(OCTET_LENGTH(message) = 65535), 0) FROM "+database+".records").Scan(&n, &atLimit); err != nil {
		t.Fatal(err)
	}
	if n != 4 || atLimit != 1 {
		t.Errorf("target holds %d rows (%d with a 65,535-byte message), want the 4 others, one at the limit", n, atLimit)
	}
	if got := testutil.ToFloat64(m.dlq.WithLabelValues(ReasonValidation)); got != 1 {
		t.Errorf("sluice_consumer_dlq_records_total{reason=validation} = %v, want 1", got)
	}
	dls := w.deadLetters(cfg.DeadLetterTopic())
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	msg, _ := Header(dls[0], HeaderError)
	for _, want := range []string{fmt.Sprintf("record %s/0@%d key key-%d", topic, growsAt, growsAt),
		"message is 90000 bytes upper-cased, over the column's 65535 bytes (text)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("dead letter error %q does not say %q", msg, want)
		}
	}
	if !bytes.Equal(dls[0].Value, values[growsAt]) {
		t.Errorf("the dead letter does not carry the record's value as sent")
	}
}
