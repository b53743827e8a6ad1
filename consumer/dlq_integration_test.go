package consumer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
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

// TestIntegrationOversizedDeadLetterIsReference: a poison record too large
// for the dead-letter topic, between good records and small poison ones, no
// longer stops the group. It is dead-lettered as a reference (size, SHA-256,
// first bytes), the good rows land, the other dead letters are written whole
// and each exactly once. A replay over it (the group reset to the start, a
// new member) dead-letters it again and goes on.
func TestIntegrationOversizedDeadLetterIsReference(t *testing.T) {
	db, brokers := servers(t)
	for _, tc := range []struct {
		name         string
		sourceMax    string // the source topic's max.message.bytes; "": the default
		dlqMax       string // the dead-letter topic's, set before the member starts; "": created by the member
		lowerDLQMax  string // set on the dead-letter topic after the member started; "": not changed
		poisonBytes  int
		producerMax  int32 // the test producer's batch limit
		wantRefBytes int   // the head kept
	}{
		{name: "over the dead-letter topic's max.message.bytes", dlqMax: "65536", poisonBytes: 100_000, producerMax: 1_000_012},
		{name: "the limit lowered after the member started", lowerDLQMax: "65536", poisonBytes: 100_000, producerMax: 1_000_012},
		{name: "a 1.1 MB record, over the default limit", sourceMax: "4194304", poisonBytes: 1_100_000, producerMax: 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, db, brokers, "it_dlqref", 1)
			ctx, database, topic, group := w.ctx, w.database, w.topic, w.group
			dlqTopic := topic + ".dlq"
			if tc.sourceMax != "" {
				if _, err := w.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &tc.sourceMax}}, topic); err != nil {
					t.Fatal(err)
				}
			}
			if tc.dlqMax != "" {
				if _, err := w.adm.CreateTopic(ctx, 1, -1, map[string]*string{"max.message.bytes": &tc.dlqMax}, dlqTopic); err != nil {
					t.Fatal(err)
				}
			}
			prod, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(tc.producerMax))
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()

			good := func(i int) []byte {
				v, _ := schema.EncodeEvent(&schema.Event{After: testRow(i, "sensor-ok"), Op: schema.OpCreate})
				return v
			}
			bad := testRow(50, "sensor-bad")
			bad.DeviceType = ""
			badValue, _ := schema.EncodeEvent(&schema.Event{After: bad, Op: schema.OpCreate})
			// Random bytes: no change event (it fails decoding, like the
			// reported record), and no compression shrinks it under the
			// broker's limit.
			poison := make([]byte, tc.poisonBytes)
			_, _ = rand.Read(poison)
			values := [][]byte{good(0), []byte(`{"op":"c","after":`), good(1), poison, good(2), badValue, good(3)}
			const poisonAt = 3
			for i, v := range values {
				rec := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: v, Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}}
				if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
					t.Fatalf("produce record %d (%d bytes): %v", i, len(v), err)
				}
			}

			cfg := DefaultConfig()
			cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database, cfg.Linger = []string{brokers}, topic, group, database, 100*time.Millisecond
			cfg.FetchMaxBytes = 4 << 20
			m := NewMetrics(prometheus.NewRegistry())
			c, err := New(ctx, cfg, db, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.lowerDLQMax != "" {
				if _, err := w.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &tc.lowerDLQMax}}, dlqTopic); err != nil {
					t.Fatal(err)
				}
			}
			w.runUntilCaughtUp(c)

			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+database+".records WHERE device_type = 'sensor-ok'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 4 {
				t.Errorf("target holds %d good rows, want 4", n)
			}
			if got := testutil.ToFloat64(m.dlqReferences); got != 1 {
				t.Errorf("sluice_consumer_dlq_references_total = %v, want 1", got)
			}
			checkDeadLetters := func(dls []*kgo.Record, times int) {
				t.Helper()
				seen := map[int64]int{}
				for _, dl := range dls {
					off, _ := Header(dl, HeaderOffset)
					o, _ := strconv.ParseInt(off, 10, 64)
					seen[o]++
					if tp, _ := Header(dl, HeaderTopic); tp != topic {
						t.Errorf("dead letter @%d names topic %q, want %q", o, tp, topic)
					}
					if origin, _ := Header(dl, "origin"); origin != "test" {
						t.Errorf("dead letter @%d lost the record's own header: %q", o, origin)
					}
					if o != poisonAt {
						if IsReference(dl) || !bytes.Equal(dl.Value, values[o]) {
							t.Errorf("dead letter @%d is not the record whole (reference %v, %d of %d bytes)", o, IsReference(dl), len(dl.Value), len(values[o]))
						}
						continue
					}
					sum := sha256.Sum256(poison)
					size, _ := Header(dl, HeaderValueSize)
					hash, _ := Header(dl, HeaderValueHash)
					why, _ := Header(dl, HeaderReference)
					reason, _ := Header(dl, HeaderReason)
					msg, _ := Header(dl, HeaderError)
					switch {
					case !IsReference(dl):
						t.Errorf("the poison record's dead letter is not a reference (%d bytes)", len(dl.Value))
					case size != strconv.Itoa(len(poison)) || hash != hex.EncodeToString(sum[:]):
						t.Errorf("reference says size %s sha256 %s, want %d %x", size, hash, len(poison), sum)
					case !bytes.Equal(dl.Value, poison[:ReferenceHeadBytes]):
						t.Errorf("reference value is %d bytes, want the record's first %d", len(dl.Value), ReferenceHeadBytes)
					case !strings.Contains(why, "MESSAGE_TOO_LARGE") || !strings.Contains(why, dlqTopic):
						t.Errorf("reference header %s = %q, want it to say MESSAGE_TOO_LARGE for %s", HeaderReference, why, dlqTopic)
					case reason != ReasonDecode || !strings.Contains(msg, fmt.Sprintf("%s/0@%d", topic, poisonAt)):
						t.Errorf("reference reason %q error %q, want decode naming %s/0@%d", reason, msg, topic, poisonAt)
					case string(dl.Key) != fmt.Sprintf("key-%d", poisonAt):
						t.Errorf("reference key %q", dl.Key)
					}
				}
				for _, o := range []int64{1, poisonAt, 5} {
					if seen[o] != times {
						t.Errorf("record @%d has %d dead letters, want %d (all: %v)", o, seen[o], times, seen)
					}
				}
				if len(dls) != 3*times {
					t.Errorf("%d dead letters, want %d (all: %v)", len(dls), 3*times, seen)
				}
			}
			checkDeadLetters(w.deadLetters(dlqTopic), 1)

			// Replay over the poison record: the group, empty now, starts
			// again at offset 0 (what sluice replay --to-earliest commits); a
			// new member dead-letters the three again and goes on.
			offs := kadm.Offsets{}
			offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
			resp, err := w.adm.CommitOffsets(ctx, group, offs)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				t.Fatalf("reset group %s: %v", group, err)
			}
			c2, err := New(ctx, cfg, db, NewMetrics(prometheus.NewRegistry()), nil)
			if err != nil {
				t.Fatal(err)
			}
			w.runUntilCaughtUp(c2)
			checkDeadLetters(w.deadLetters(dlqTopic), 2)
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+database+".records").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 4 {
				t.Errorf("after the replay the target holds %d rows, want the 4 good ones", n)
			}

			// A re-drive sends each whole dead letter back once, however
			// often it was dead-lettered, and passes over the references,
			// naming each.
			before, err := EndOffsets(ctx, w.adm, topic)
			if err != nil {
				t.Fatal(err)
			}
			var skipped []string
			res, err := Redrive(ctx, RedriveConfig{Brokers: []string{brokers}, DLQTopic: dlqTopic, Group: group + ".redrive",
				DialTimeout: 10 * time.Second, Skipped: func(_ *kgo.Record, why string) { skipped = append(skipped, why) }})
			if err != nil {
				t.Fatal(err)
			}
			if res.Redriven != 2 || res.References != 2 || res.Duplicates != 2 || res.Foreign != 0 || len(skipped) != 4 {
				t.Errorf("re-drive %+v with %d skipped, want 2 re-driven, 2 references, 2 duplicates", res, len(skipped))
			}
			after, err := EndOffsets(ctx, w.adm, topic)
			if err != nil {
				t.Fatal(err)
			}
			if got := after[0] - before[0]; got != 2 {
				t.Errorf("the re-drive produced %d records to %s, want 2", got, topic)
			}
			for _, why := range skipped {
				if strings.Contains(why, "reference") && !strings.Contains(why, fmt.Sprintf("record %s/0@%d", topic, poisonAt)) {
					t.Errorf("skipped reference not named: %s", why)
				}
			}
		})
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
