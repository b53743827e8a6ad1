package consumer

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
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

// TestIntegrationRedrive: a re-drive sends each whole dead letter back to
// its topic once, without Sluice's headers, however often it was
// dead-lettered, and passes over references and records without Sluice's
// headers, naming each; its commits make a second re-drive find nothing.
// (The producer's tests write references; cmd/sluice's run it end to end.)
func TestIntegrationRedrive(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_redrive", 1)
	ctx, topic, group := w.ctx, w.topic, w.group
	dlqTopic := topic + ".dlq"
	dlw := newTestDeadLetters(t, brokers, dlqTopic)
	src := func(off int64, value string) *kgo.Record {
		return &kgo.Record{Topic: topic, Offset: off, Key: []byte(fmt.Sprintf("key-%d", off)), Value: []byte(value),
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}}
	}
	now := time.Now()
	dead := func(r *kgo.Record) *kgo.Record {
		return deadLetter(dlqTopic, group, r, ReasonDecode, &RecordError{Topic: r.Topic, Offset: r.Offset, Key: r.Key, Err: errors.New("bad")}, now)
	}
	ref := dead(src(3, "head of a large value"))
	ref.Headers = append(ref.Headers, kgo.RecordHeader{Key: schema.DLQHeaderReference, Value: []byte("too large")},
		kgo.RecordHeader{Key: schema.DLQHeaderValueSize, Value: []byte("100000")}, kgo.RecordHeader{Key: schema.DLQHeaderValueHash, Value: []byte("abc")})
	letters := []*kgo.Record{dead(src(1, "one")), ref, dead(src(5, "five")), dead(src(1, "one")), {Topic: dlqTopic, Value: []byte("foreign")}}
	if err := dlw.Send(ctx, letters, func(*kgo.Record) {}); err != nil {
		t.Fatal(err)
	}
	before, err := EndOffsets(ctx, w.adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	redrive := func() (RedriveResult, []string) {
		var skipped []string
		res, err := Redrive(ctx, RedriveConfig{Brokers: []string{brokers}, DLQTopic: dlqTopic, Group: group + ".redrive", Resend: dlw,
			DialTimeout: 10 * time.Second, Skipped: func(_ *kgo.Record, why string) { skipped = append(skipped, why) }})
		if err != nil {
			t.Fatal(err)
		}
		return res, skipped
	}
	res, skipped := redrive()
	if res.Redriven != 2 || res.References != 1 || res.Duplicates != 1 || res.Foreign != 1 || len(skipped) != 3 {
		t.Errorf("re-drive %+v with %d skipped, want 2 re-driven, 1 reference, 1 duplicate, 1 foreign", res, len(skipped))
	}
	for _, why := range skipped {
		if strings.Contains(why, "reference") && !strings.Contains(why, fmt.Sprintf("record %s/0@3", topic)) {
			t.Errorf("skipped reference not named: %s", why)
		}
	}
	after, err := EndOffsets(ctx, w.adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := after[0] - before[0]; got != 2 {
		t.Fatalf("the re-drive produced %d records to %s, want 2", got, topic)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var back []*kgo.Record
	for len(back) < 2 && ctx.Err() == nil {
		back = append(back, cl.PollFetches(ctx).Records()...)
	}
	for _, r := range back {
		if want := map[string]string{"key-1": "one", "key-5": "five"}[string(r.Key)]; string(r.Value) != want || len(r.Headers) != 1 || r.Headers[0].Key != "origin" {
			t.Errorf("re-driven record %s = %q with headers %v, want %q with only its own header", r.Key, r.Value, r.Headers, want)
		}
	}
	if res, _ := redrive(); res.Redriven+res.Skipped() != 0 {
		t.Errorf("second re-drive %+v, want nothing left", res)
	}
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
	ctx, database, topic := w.ctx, w.database, w.topic
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
	m := NewMetrics(prometheus.NewRegistry())
	c := w.member(100*time.Millisecond, m)
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
	dls := w.deadLetters(topic + ".dlq")
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	msg, _ := Header(dls[0], schema.DLQHeaderError)
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
