package consumer

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var t0 = time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC)

func rec(topic string, partition int32, offset int64) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: partition, Offset: offset, LeaderEpoch: 3}
}

func TestBatchFlushBySize(t *testing.T) {
	b := newBatch(3, time.Hour)
	if b.room() != 3 || b.full() {
		t.Fatalf("new batch: room %d full %v, want 3 false", b.room(), b.full())
	}
	for i := range 3 {
		if b.full() {
			t.Fatalf("full after %d of 3 records", i)
		}
		b.add(rec("t", 0, int64(i)), t0)
		if got, want := b.room(), 3-(i+1); got != want {
			t.Errorf("room() after %d records = %d, want %d", i+1, got, want)
		}
	}
	if !b.full() {
		t.Error("not full after 3 of 3 records")
	}
	if !b.due(t0) {
		t.Error("a full batch is not due before its linger time")
	}
	if b.records != 3 {
		t.Errorf("records %d, want 3", b.records)
	}
}

func TestBatchFlushByTime(t *testing.T) {
	const linger = 500 * time.Millisecond
	b := newBatch(100, linger)
	for _, now := range []time.Time{{}, t0, t0.Add(linger), t0.Add(24 * time.Hour)} {
		if b.due(now) {
			t.Errorf("empty batch due at %v", now)
		}
	}
	b.add(rec("t", 0, 0), t0)
	// A later record does not push the deadline out.
	b.add(rec("t", 0, 1), t0.Add(400*time.Millisecond))
	if got := b.deadline(); !got.Equal(t0.Add(linger)) {
		t.Errorf("deadline() = %v, want the first record's time plus linger %v", got, t0.Add(linger))
	}
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{name: "at the first record", now: t0, want: false},
		{name: "just before linger", now: t0.Add(linger - time.Nanosecond), want: false},
		{name: "at linger", now: t0.Add(linger), want: true},
		{name: "after linger", now: t0.Add(linger + time.Second), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.due(tt.now); got != tt.want {
				t.Errorf("due(%v) = %v, want %v", tt.now.Sub(t0), got, tt.want)
			}
		})
	}
	if b.full() {
		t.Error("2 of 100 records reported full")
	}
}

func TestBatchOffsets(t *testing.T) {
	b := newBatch(10, time.Second)
	b.add(rec("a", 0, 5), t0)
	b.add(rec("a", 0, 7), t0)
	b.add(rec("a", 1, 3), t0)
	b.add(rec("b", 0, 100), t0)
	b.add(rec("a", 2, 0), t0)

	want := map[string]map[int32]kgo.EpochOffset{
		"a": {0: {Epoch: 3, Offset: 8}, 1: {Epoch: 3, Offset: 4}, 2: {Epoch: 3, Offset: 1}},
		"b": {0: {Epoch: 3, Offset: 101}},
	}
	if len(b.offsets) != len(want) {
		t.Fatalf("offsets = %v, want %v", b.offsets, want)
	}
	for topic, parts := range want {
		if len(b.offsets[topic]) != len(parts) {
			t.Errorf("offsets[%s] = %v, want %v", topic, b.offsets[topic], parts)
		}
		for p, eo := range parts {
			if got := b.offsets[topic][p]; got != eo {
				t.Errorf("offsets[%s][%d] = %+v, want %+v", topic, p, got, eo)
			}
		}
	}
	if b.records != 5 {
		t.Errorf("records %d, want 5", b.records)
	}
	// The epoch is the last record's.
	r := rec("a", 0, 9)
	r.LeaderEpoch = 4
	b.add(r, t0)
	if got := b.offsets["a"][0]; got != (kgo.EpochOffset{Epoch: 4, Offset: 10}) {
		t.Errorf("offsets[a][0] after a new leader epoch = %+v, want {4 10}", got)
	}
}

// TestBatchSpan checks the Kafka coordinates a failed batch's error names:
// each partition's first and last offset, topics and partitions in order,
// and a count instead of a list past eight partitions.
func TestBatchSpan(t *testing.T) {
	b := newBatch(100, time.Second)
	b.add(rec("b", 0, 100), t0)
	b.add(rec("a", 2, 0), t0)
	b.add(rec("a", 0, 5), t0)
	b.add(rec("a", 0, 7), t0)
	want := "topic a partitions 0 offsets 5-7, 2 offsets 0-0; topic b partitions 0 offsets 100-100"
	if got := b.span(); got != want {
		t.Errorf("span = %q, want %q", got, want)
	}
	b.reset()
	b.add(rec("a", 0, 9), t0)
	if got, want := b.span(), "topic a partitions 0 offsets 9-9"; got != want {
		t.Errorf("after reset span = %q, want %q", got, want)
	}
	for p := range int32(10) {
		b.add(rec("a", p, 20), t0)
	}
	want = "topic a partitions 0 offsets 9-20, 1 offsets 20-20, 2 offsets 20-20, 3 offsets 20-20, 4 offsets 20-20, " +
		"5 offsets 20-20, 6 offsets 20-20, 7 offsets 20-20 and 2 more"
	if got := b.span(); got != want {
		t.Errorf("span of ten partitions = %q, want %q", got, want)
	}
}

func TestBatchReset(t *testing.T) {
	b := newBatch(2, time.Second)
	b.add(rec("a", 0, 1), t0)
	b.add(rec("a", 1, 1), t0)
	b.reset()
	if len(b.offsets) != 0 || b.records != 0 || !b.started.IsZero() {
		t.Fatalf("after reset: offsets %v records %d started %v", b.offsets, b.records, b.started)
	}
	if b.room() != 2 || b.full() || b.due(t0.Add(time.Hour)) {
		t.Errorf("after reset: room %d full %v due %v; want 2 false false", b.room(), b.full(), b.due(t0.Add(time.Hour)))
	}
	// The batch is reusable, and its clock restarts with the next record.
	t1 := t0.Add(time.Minute)
	b.add(rec("a", 0, 2), t1)
	if b.due(t1.Add(time.Second-time.Nanosecond)) || !b.due(t1.Add(time.Second)) {
		t.Error("after reset the linger does not count from the next record")
	}
	if got := b.offsets["a"][0].Offset; got != 3 || len(b.offsets["a"]) != 1 {
		t.Errorf("after reset offsets = %v, want only a/0 at 3", b.offsets)
	}
}
