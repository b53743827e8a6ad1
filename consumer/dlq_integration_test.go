package consumer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationRedrive: a re-drive sends each whole dead letter back to
// its topic once, without Sluice's headers, however often it was
// dead-lettered, and passes over references and records without Sluice's
// headers, naming each; its commits make a second re-drive find nothing.
// (The producer's tests write references; cmd/sluice's run it end to end.)
func TestIntegrationRedrive(t *testing.T) {
	_, brokers := servers(t)
	w := newWorld(t, brokers, "it_redrive", 1)
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
