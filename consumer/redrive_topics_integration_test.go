package consumer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestIntegrationDeadLettersByTopic: one dead-letter topic holds the dead
// letters of two tables' topics (a table-driven group's). Inspect with
// Topics shows one table's only; a re-drive with Topics sends back one
// table's only and counts the other's as Other, and the other table's own
// re-drive (its own group) still finds and sends its own.
func TestIntegrationDeadLettersByTopic(t *testing.T) {
	_, brokers := servers(t)
	w := newWorld(t, brokers, "it_dlq_topics", 1)
	ctx := w.ctx
	topicA, topicB := w.topic, w.topic+".b"
	if _, err := w.adm.CreateTopic(ctx, 1, -1, nil, topicB); err != nil {
		t.Fatal(err)
	}
	dlqTopic := w.group + ".dlq"
	dlw := newTestDeadLetters(t, brokers, dlqTopic)
	now := time.Now()
	dead := func(topic string, off int64) *kgo.Record {
		r := &kgo.Record{Topic: topic, Offset: off, Key: []byte(fmt.Sprintf("%s-%d", topic, off)), Value: []byte("v")}
		return deadLetter(dlqTopic, w.group, r, ReasonDecode, &RecordError{Topic: topic, Offset: off, Key: r.Key, Err: errors.New("bad")}, now)
	}
	if err := dlw.Send(ctx, []*kgo.Record{dead(topicA, 1), dead(topicB, 1), dead(topicA, 2)}, func(*kgo.Record) {}); err != nil {
		t.Fatal(err)
	}

	inspect := func(limit int, topics ...string) []string {
		t.Helper()
		var got []string
		n, err := Inspect(ctx, InspectConfig{Brokers: []string{brokers}, DLQTopic: dlqTopic, DialTimeout: 10 * time.Second,
			Topics: topics, Limit: limit, Idle: 2 * time.Second}, func(r *kgo.Record) error {
			got = append(got, coordinates(r))
			return nil
		})
		if err != nil || n != len(got) {
			t.Fatalf("Inspect %v: %d, %v (passed %d)", topics, n, err, len(got))
		}
		return got
	}
	if got := inspect(10, topicA); fmt.Sprint(got) != fmt.Sprintf("[%s/0@1 %s/0@2]", topicA, topicA) {
		t.Errorf("inspect of %s: %v, want its two dead letters", topicA, got)
	}
	if got := inspect(10); len(got) != 3 {
		t.Errorf("inspect of every topic: %v, want 3 dead letters", got)
	}
	if got := inspect(1, topicB); fmt.Sprint(got) != fmt.Sprintf("[%s/0@1]", topicB) {
		t.Errorf("inspect of %s: %v, want its one dead letter", topicB, got)
	}

	ends := func(topic string) int64 {
		t.Helper()
		e, err := EndOffsets(ctx, w.adm, topic)
		if err != nil {
			t.Fatal(err)
		}
		return e[0]
	}
	redrive := func(topic string) RedriveResult {
		t.Helper()
		res, err := Redrive(ctx, RedriveConfig{Brokers: []string{brokers}, DLQTopic: dlqTopic, Group: w.group + ".redrive." + topic,
			Topics: []string{topic}, Resend: dlw, DialTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := redrive(topicA); res.Redriven != 2 || res.Other != 1 || res.Skipped() != 0 {
		t.Errorf("re-drive of %s: %+v, want 2 re-driven and 1 other", topicA, res)
	}
	if a, b := ends(topicA), ends(topicB); a != 2 || b != 0 {
		t.Errorf("after the re-drive of %s: %s holds %d records, %s %d; want 2 and 0", topicA, topicA, a, topicB, b)
	}
	if res := redrive(topicA); res.Redriven+res.Other+res.Skipped() != 0 {
		t.Errorf("second re-drive of %s: %+v, want nothing left", topicA, res)
	}
	if res := redrive(topicB); res.Redriven != 1 || res.Other != 2 {
		t.Errorf("re-drive of %s after %s's: %+v, want its 1 re-driven and 2 other", topicB, topicA, res)
	}
	if a, b := ends(topicA), ends(topicB); a != 2 || b != 1 {
		t.Errorf("after both re-drives: %s holds %d records, %s %d; want 2 and 1", topicA, a, topicB, b)
	}
}
