package consumer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

var t0 = time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC)

func rec(topic string, partition int32, offset int64) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: partition, Offset: offset, LeaderEpoch: 3}
}

func upsert(device string, ts time.Time, msg string) *schema.Event {
	r := &schema.Row{DeviceType: device, EventType: "reading", Timestamp: ts}
	r.Message.String, r.Message.Valid = msg, true
	return &schema.Event{After: r, Op: schema.OpCreate}
}

func del(device string, ts time.Time) *schema.Event {
	return &schema.Event{Before: &schema.Row{DeviceType: device, EventType: "reading", Timestamp: ts}, Op: schema.OpDelete}
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
		var ev *schema.Event
		if i != 1 { // a tombstone counts towards the size too
			ev = upsert("d", t0.Add(time.Duration(i)*time.Second), "m")
		}
		b.add(rec("t", 0, int64(i)), ev, t0)
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
	if len(b.items) != 2 || b.records != 3 {
		t.Errorf("items %d, records %d; want 2 events of 3 records", len(b.items), b.records)
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
	b.add(rec("t", 0, 0), upsert("d", t0, "m"), t0)
	// A later record does not push the deadline out.
	b.add(rec("t", 0, 1), upsert("d", t0.Add(time.Second), "m"), t0.Add(400*time.Millisecond))
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
	b.add(rec("a", 0, 5), upsert("d1", t0, "x"), t0)
	b.add(rec("a", 0, 7), upsert("d2", t0, "x"), t0)
	b.add(rec("a", 1, 3), nil, t0) // tombstone: nothing to apply, offset still committed
	b.add(rec("b", 0, 100), upsert("d3", t0, "x"), t0)
	b.add(rec("a", 2, 0), nil, t0)

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
	if len(b.items) != 3 || b.records != 5 {
		t.Errorf("items %d records %d, want 3 and 5", len(b.items), b.records)
	}
	// The epoch is the last record's.
	r := rec("a", 0, 9)
	r.LeaderEpoch = 4
	b.add(r, nil, t0)
	if got := b.offsets["a"][0]; got != (kgo.EpochOffset{Epoch: 4, Offset: 10}) {
		t.Errorf("offsets[a][0] after a new leader epoch = %+v, want {4 10}", got)
	}
}

// TestBatchSpan checks the Kafka coordinates a failed batch's error names:
// each partition's first and last offset, topics and partitions in order,
// and a count instead of a list past eight partitions.
func TestBatchSpan(t *testing.T) {
	b := newBatch(100, time.Second)
	b.add(rec("b", 0, 100), upsert("d3", t0, "x"), t0)
	b.add(rec("a", 2, 0), nil, t0)
	b.add(rec("a", 0, 5), upsert("d1", t0, "x"), t0)
	b.add(rec("a", 0, 7), upsert("d2", t0, "x"), t0)
	want := "topic a partitions 0 offsets 5-7, 2 offsets 0-0; topic b partitions 0 offsets 100-100"
	if got := b.span(); got != want {
		t.Errorf("span = %q, want %q", got, want)
	}
	b.reset()
	b.add(rec("a", 0, 9), nil, t0)
	if got, want := b.span(), "topic a partitions 0 offsets 9-9"; got != want {
		t.Errorf("after reset span = %q, want %q", got, want)
	}
	for p := range int32(10) {
		b.add(rec("a", p, 20), nil, t0)
	}
	want = "topic a partitions 0 offsets 9-20, 1 offsets 20-20, 2 offsets 20-20, 3 offsets 20-20, 4 offsets 20-20, " +
		"5 offsets 20-20, 6 offsets 20-20, 7 offsets 20-20 and 2 more"
	if got := b.span(); got != want {
		t.Errorf("span of ten partitions = %q, want %q", got, want)
	}
}

func TestBatchReset(t *testing.T) {
	b := newBatch(2, time.Second)
	b.add(rec("a", 0, 1), upsert("d", t0, "x"), t0)
	b.add(rec("a", 1, 1), nil, t0)
	b.reset()
	if len(b.items) != 0 || len(b.offsets) != 0 || b.records != 0 || !b.started.IsZero() {
		t.Fatalf("after reset: items %d offsets %v records %d started %v", len(b.items), b.offsets, b.records, b.started)
	}
	if b.room() != 2 || b.full() || b.due(t0.Add(time.Hour)) {
		t.Errorf("after reset: room %d full %v due %v; want 2 false false", b.room(), b.full(), b.due(t0.Add(time.Hour)))
	}
	// The batch is reusable, and its clock restarts with the next record.
	t1 := t0.Add(time.Minute)
	b.add(rec("a", 0, 2), upsert("d", t0, "y"), t1)
	if b.due(t1.Add(time.Second-time.Nanosecond)) || !b.due(t1.Add(time.Second)) {
		t.Error("after reset the linger does not count from the next record")
	}
	if got := b.offsets["a"][0].Offset; got != 3 || len(b.offsets["a"]) != 1 {
		t.Errorf("after reset offsets = %v, want only a/0 at 3", b.offsets)
	}
}

func TestBatchFinal(t *testing.T) {
	b := newBatch(100, time.Second)
	k1, k2 := t0, t0.Add(time.Second)
	// Offsets increase within a partition; keys arrive out of order and repeat.
	b.add(rec("t", 0, 10), upsert("zeta", k1, "z1"), t0)
	b.add(rec("t", 0, 11), upsert("alpha", k2, "a2-first"), t0)
	b.add(rec("t", 1, 5), upsert("alpha", k1, "a1"), t0)
	b.add(rec("t", 0, 12), upsert("alpha", k2, "a2-second"), t0)
	b.add(rec("t", 0, 13), nil, t0)
	b.add(rec("t", 0, 14), upsert("alpha", k2, "a2-last"), t0)
	b.add(rec("t", 0, 15), upsert("zeta", k1, "z1-updated"), t0)
	b.add(rec("t", 2, 1), upsert("mid", k1, "m"), t0)

	merged := b.final()
	if merged != 3 {
		t.Errorf("final() merged %d, want 3 (two earlier alpha@k2, one earlier zeta)", merged)
	}
	want := []struct {
		device string
		ts     time.Time
		msg    string
		offset int64
	}{
		{"alpha", k1, "a1", 5},
		{"alpha", k2, "a2-last", 14},
		{"mid", k1, "m", 1},
		{"zeta", k1, "z1-updated", 15},
	}
	if len(b.items) != len(want) {
		t.Fatalf("final() left %d items, want %d: %+v", len(b.items), len(want), b.items)
	}
	for i, w := range want {
		it := b.items[i]
		if it.key.DeviceType != w.device || !it.key.Timestamp.Equal(w.ts) || it.row.Message.String != w.msg || it.offset != w.offset {
			t.Errorf("item %d = %v %q @%d, want (%s, %v) %q @%d", i, it.key, it.row.Message.String, it.offset, w.device, w.ts, w.msg, w.offset)
		}
	}
	// The offsets to commit are untouched by merging.
	if got := b.offsets["t"][0].Offset; got != 16 {
		t.Errorf("offsets[t][0] = %d, want 16", got)
	}
	if b.records != 8 {
		t.Errorf("records = %d after final, want 8", b.records)
	}
}

func TestBatchFinalMixedOps(t *testing.T) {
	tests := []struct {
		name    string
		events  []*schema.Event // in offset order, one key
		wantOp  schema.Op
		wantMsg string
	}{
		{name: "upsert then delete keeps the delete", events: []*schema.Event{upsert("d", t0, "x"), del("d", t0)}, wantOp: schema.OpDelete},
		{name: "delete then upsert keeps the upsert", events: []*schema.Event{del("d", t0), upsert("d", t0, "again")}, wantOp: schema.OpCreate, wantMsg: "again"},
		{name: "create update delete", events: []*schema.Event{upsert("d", t0, "1"), upsert("d", t0, "2"), del("d", t0)}, wantOp: schema.OpDelete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatch(10, time.Second)
			for i, ev := range tt.events {
				b.add(rec("t", 0, int64(100+i)), ev, t0)
			}
			if merged := b.final(); merged != len(tt.events)-1 {
				t.Errorf("merged %d, want %d", merged, len(tt.events)-1)
			}
			if len(b.items) != 1 {
				t.Fatalf("%d items left, want 1", len(b.items))
			}
			it := b.items[0]
			if it.op != tt.wantOp || it.offset != int64(100+len(tt.events)-1) {
				t.Errorf("kept op %q @%d, want %q @%d", it.op, it.offset, tt.wantOp, 100+len(tt.events)-1)
			}
			if tt.wantMsg != "" && it.row.Message.String != tt.wantMsg {
				t.Errorf("kept message %q, want %q", it.row.Message.String, tt.wantMsg)
			}
		})
	}
}

func TestBatchFinalKeepsHighestOffset(t *testing.T) {
	// Items are merged by offset, not by arrival order.
	b := newBatch(10, time.Second)
	b.add(rec("t", 0, 21), del("d", t0), t0)
	b.add(rec("t", 0, 20), upsert("d", t0, "older"), t0)
	b.final()
	if len(b.items) != 1 || b.items[0].offset != 21 || b.items[0].op != schema.OpDelete {
		t.Errorf("kept %+v, want the delete at offset 21", b.items)
	}
}

func TestBatchFinalEmptyAndDistinct(t *testing.T) {
	b := newBatch(10, time.Second)
	if merged := b.final(); merged != 0 || len(b.items) != 0 {
		t.Errorf("empty final(): merged %d items %d", merged, len(b.items))
	}
	b.add(rec("t", 0, 1), upsert("d", t0, "x"), t0)
	b.add(rec("t", 0, 2), upsert("d", t0.Add(time.Millisecond), "x"), t0)
	// Same device and time, another event type: a distinct key.
	ev := upsert("d", t0, "x")
	ev.After.EventType = "alert"
	b.add(rec("t", 0, 3), ev, t0)
	if merged := b.final(); merged != 0 || len(b.items) != 3 {
		t.Errorf("distinct keys: merged %d items %d, want 0 and 3", merged, len(b.items))
	}
	if b.items[0].key.EventType != "alert" {
		t.Errorf("first key %v, want the alert (event type orders before time)", b.items[0].key)
	}
}

// versioned gives ev the binlog position mysql-bin.000002:pos (pos 0: none).
func versioned(ev *schema.Event, pos uint64) *schema.Event {
	if pos > 0 {
		ev.Source.File, ev.Source.Pos = "mysql-bin.000002", pos
	}
	return ev
}

func read(device string, ts time.Time, msg string, pos uint64) *schema.Event {
	ev := upsert(device, ts, msg)
	ev.Op = schema.OpRead
	return versioned(ev, pos)
}

func TestBatchFinalByVersion(t *testing.T) {
	tests := []struct {
		name    string
		events  []*schema.Event // one key, in offset order from 100
		wantOp  schema.Op
		wantMsg string
		wantOff int64
	}{
		{name: "tail delete Q then older backfill read P keeps the delete",
			events: []*schema.Event{versioned(del("d", t0), 500), read("d", t0, "stale", 400)}, wantOp: schema.OpDelete, wantOff: 100},
		{name: "backfill read P then delete Q keeps the delete",
			events: []*schema.Event{read("d", t0, "old", 400), versioned(del("d", t0), 500)}, wantOp: schema.OpDelete, wantOff: 101},
		{name: "update Q then older read P keeps the update",
			events: []*schema.Event{versioned(upsert("d", t0, "new"), 500), read("d", t0, "stale", 400)}, wantOp: schema.OpCreate, wantMsg: "new", wantOff: 100},
		{name: "delete Q then newer create R keeps the create",
			events: []*schema.Event{versioned(del("d", t0), 500), versioned(upsert("d", t0, "again"), 600)}, wantOp: schema.OpCreate, wantMsg: "again", wantOff: 101},
		{name: "the highest version wins wherever it sits",
			events: []*schema.Event{read("d", t0, "a", 300), versioned(upsert("d", t0, "top"), 900), read("d", t0, "b", 700), read("d", t0, "c", 800)},
			wantOp: schema.OpCreate, wantMsg: "top", wantOff: 101},
		{name: "equal versions: the later offset",
			events: []*schema.Event{versioned(del("d", t0), 500), versioned(upsert("d", t0, "same event"), 500)}, wantOp: schema.OpCreate, wantMsg: "same event", wantOff: 101},
		{name: "unversioned after versioned: the later offset",
			events: []*schema.Event{versioned(upsert("d", t0, "v"), 900), upsert("d", t0, "plain")}, wantOp: schema.OpCreate, wantMsg: "plain", wantOff: 101},
		{name: "versioned after unversioned: the later offset",
			events: []*schema.Event{del("d", t0), read("d", t0, "v", 100)}, wantOp: schema.OpRead, wantMsg: "v", wantOff: 101},
		{name: "all unversioned: the later offset",
			events: []*schema.Event{upsert("d", t0, "1"), del("d", t0), upsert("d", t0, "3")}, wantOp: schema.OpCreate, wantMsg: "3", wantOff: 102},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatch(10, time.Second)
			for i, ev := range tt.events {
				b.add(rec("t", 0, int64(100+i)), ev, t0)
			}
			// Arrival order does not matter: items are ordered by offset.
			slices.Reverse(b.items)
			if merged := b.final(); merged != len(tt.events)-1 {
				t.Errorf("merged %d, want %d", merged, len(tt.events)-1)
			}
			if len(b.items) != 1 {
				t.Fatalf("%d items left, want 1", len(b.items))
			}
			it := b.items[0]
			if it.op != tt.wantOp || it.offset != tt.wantOff {
				t.Errorf("kept op %q @%d, want %q @%d", it.op, it.offset, tt.wantOp, tt.wantOff)
			}
			if tt.wantOp != schema.OpDelete && (it.row == nil || it.row.Message.String != tt.wantMsg) {
				t.Errorf("kept row %+v, want message %q", it.row, tt.wantMsg)
			}
		})
	}
}

func TestBatchFinalByVersionKeepsKeysApart(t *testing.T) {
	// A newer version of one key never displaces another key's change.
	b := newBatch(10, time.Second)
	b.add(rec("t", 0, 1), read("a", t0, "a-old", 100), t0)
	b.add(rec("t", 1, 1), versioned(del("b", t0), 900), t0)
	b.add(rec("t", 0, 2), versioned(upsert("a", t0, "a-new"), 200), t0)
	b.add(rec("t", 1, 2), read("b", t0, "b-stale", 800), t0)
	if merged := b.final(); merged != 2 || len(b.items) != 2 {
		t.Fatalf("merged %d, %d items; want 2 and 2", merged, len(b.items))
	}
	if a := b.items[0]; a.key.DeviceType != "a" || a.row.Message.String != "a-new" || a.version != 2<<32|200 {
		t.Errorf("key a kept %+v, want a-new at version 2<<32|200", a)
	}
	if d := b.items[1]; d.key.DeviceType != "b" || d.op != schema.OpDelete || d.version != 2<<32|900 {
		t.Errorf("key b kept %+v, want the delete at version 2<<32|900", d)
	}
}

// TestBatchFinalOrdersLikeKeyCompare checks the sort's device-type prefixes
// against Key.Compare: device types that share 16 bytes or more, end early,
// hold zero bytes or bytes over 0x7f, with keys repeated across partitions'
// offsets so that merging is exercised too.
func TestBatchFinalOrdersLikeKeyCompare(t *testing.T) {
	devices := []string{"", "\x00", "a", "a\x00", "a\x00b", "ab", "thermostat-02595", "thermostat-02595\x00",
		"thermostat-025950", "thermostat-02596", "thermostat-0259", "meter-00983", "meter-00983-and-more-bytes",
		"meter-00983-and-more-bytez", "\xff", "\xffa", "Ünï", "z"}
	events := []string{"alert", "reading", "status"}
	b := newBatch(10000, time.Hour)
	off := int64(0)
	for round := range 3 { // the same keys again at later offsets
		for i, d := range devices {
			for j, e := range events {
				ev := schema.Event{Op: schema.OpCreate, After: &schema.Row{DeviceType: d, EventType: e,
					Timestamp: t0.Add(time.Duration((i*7+j*3+round)%5) * time.Second)}}
				b.add(rec("t", int32(i%3), off), &ev, t0)
				off++
			}
		}
	}
	want := slices.Clone(b.items)
	slices.SortStableFunc(want, func(x, y item) int { return x.key.Compare(y.key) })
	want = slices.CompactFunc(want, func(x, y item) bool { return x.key.Compare(y.key) == 0 })
	b.final()
	if len(b.items) != len(want) {
		t.Fatalf("final kept %d items, want %d distinct keys", len(b.items), len(want))
	}
	for i := range want {
		if got := b.items[i].key; got.Compare(want[i].key) != 0 {
			t.Fatalf("item %d: key %v, want %v", i, got, want[i].key)
		}
		if i > 0 && b.items[i-1].key.Compare(b.items[i].key) >= 0 {
			t.Fatalf("items %d and %d out of order: %v, %v", i-1, i, b.items[i-1].key, b.items[i].key)
		}
	}
}

// BenchmarkBatchFinal sorts and merges a full batch of distinct keys in the
// order a backfill produces them (by source id, so keys in no order).
//
//	go test -run '^$' -bench BatchFinal -count 6 ./consumer
func BenchmarkBatchFinal(b *testing.B) {
	const size = 10000
	base := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	src := newBatch(size, time.Hour)
	for j := range size {
		ev := schema.Event{Op: schema.OpRead, After: &schema.Row{
			ID: uint64(j + 1), Date: base, Timestamp: base.Add(time.Duration((j*7919)%86400) * time.Second),
			DeviceType: fmt.Sprintf("device-%05d", (j*104729)%20000), EventType: []string{"reading", "status", "alert", "heartbeat"}[j%4],
		}}
		src.add(rec("t", int32(j%12), int64(j)), &ev, base)
	}
	bt := newBatch(size, time.Hour)
	for b.Loop() {
		bt.items = append(bt.items[:0], src.items...)
		bt.final()
	}
}
