package backfill

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestCoalesce(t *testing.T) {
	tests := []struct {
		name string
		in   []Range
		want []Range
	}{
		{name: "empty", in: nil, want: []Range{}},
		{name: "one", in: []Range{{5, 9}}, want: []Range{{5, 9}}},
		{name: "adjacent merge", in: []Range{{1, 10}, {11, 20}}, want: []Range{{1, 20}}},
		{name: "out of order", in: []Range{{21, 30}, {1, 10}, {11, 20}}, want: []Range{{1, 30}}},
		{name: "overlap", in: []Range{{1, 15}, {10, 20}}, want: []Range{{1, 20}}},
		{name: "contained", in: []Range{{1, 100}, {10, 20}}, want: []Range{{1, 100}}},
		{name: "gap kept", in: []Range{{1, 10}, {12, 20}}, want: []Range{{1, 10}, {12, 20}}},
		{name: "duplicates", in: []Range{{3, 4}, {3, 4}}, want: []Range{{3, 4}}},
		{name: "inverted dropped", in: []Range{{9, 3}, {1, 2}}, want: []Range{{1, 2}}},
		{name: "id 0", in: []Range{{0, 0}, {1, 5}}, want: []Range{{0, 5}}},
		{name: "top of the id space", in: []Range{{maxID, maxID}, {maxID - 5, maxID - 1}, {maxID - 2, maxID}},
			want: []Range{{maxID - 5, maxID}}},
		{name: "whole id space", in: []Range{{0, maxID}, {5, 6}}, want: []Range{{0, maxID}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got := Coalesce(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Coalesce(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("Coalesce modified its argument: %v -> %v", in, tt.in)
			}
		})
	}
}

func TestRangeSpan(t *testing.T) {
	for _, tt := range []struct {
		r    Range
		want uint64
	}{{Range{1, 1}, 1}, {Range{0, 9}, 10}, {Range{5, 4}, 0}, {Range{0, maxID}, maxID}, {Range{1, maxID}, maxID}} {
		if got := tt.r.Span(); got != tt.want {
			t.Errorf("%v.Span() = %d, want %d", tt.r, got, tt.want)
		}
	}
}

// planAll walks a planner over ids with done ranges skipped and returns the
// chunks, the ids skipped, and how many of those were resumed.
func planAll(t *testing.T, ids []uint64, size uint64, done []Range) (chunks []Chunk, skipped, resumed uint64) {
	t.Helper()
	src := newFakeSource(ids...)
	next := func(_ context.Context, from uint64) (uint64, bool, error) {
		i, _ := slices.BinarySearch(src.ids, from)
		if i == len(src.ids) {
			return 0, false, nil
		}
		return src.ids[i], true, nil
	}
	p := NewPlanner(src.ids[0], src.ids[len(src.ids)-1], size, next)
	p.Skip(done)
	for range 100000 {
		c, s, ok, err := p.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		skipped += s
		if !ok {
			return chunks, skipped, p.Resumed()
		}
		chunks = append(chunks, c)
	}
	t.Fatal("the planner did not finish")
	return nil, 0, 0
}

func TestPlannerSkipsDoneRanges(t *testing.T) {
	tests := []struct {
		name    string
		ids     []uint64
		size    uint64
		done    []Range
		want    []Chunk
		resumed uint64
	}{
		{name: "nothing done", ids: idRange(1, 25), size: 10,
			want: []Chunk{{Lo: 0, Hi: 10}, {Lo: 10, Hi: 20}, {Lo: 20, Hi: 25}}},
		{name: "a done chunk in the middle", ids: idRange(1, 25), size: 10, done: []Range{{11, 20}},
			want: []Chunk{{Lo: 0, Hi: 10}, {Lo: 20, Hi: 25}}, resumed: 10},
		{name: "a chunk stops short of a done range", ids: idRange(1, 25), size: 10, done: []Range{{6, 12}},
			want: []Chunk{{Lo: 0, Hi: 5}, {Lo: 12, Hi: 22}, {Lo: 22, Hi: 25}}, resumed: 7},
		{name: "done from the start", ids: idRange(1, 25), size: 10, done: []Range{{0, 14}},
			want: []Chunk{{Lo: 14, Hi: 24}, {Lo: 24, Hi: 25}}, resumed: 14},
		{name: "done to the end", ids: idRange(1, 25), size: 10, done: []Range{{18, 1000}},
			want: []Chunk{{Lo: 0, Hi: 10}, {Lo: 10, Hi: 17}}, resumed: 8},
		{name: "all done", ids: idRange(1, 25), size: 10, done: []Range{{1, 25}}, resumed: 25},
		{name: "gap ends inside a done range", ids: []uint64{1, 2, 50, 51, 52, 90}, size: 10, done: []Range{{45, 51}},
			want: []Chunk{{Lo: 0, Hi: 10}, {Lo: 51, Hi: 61}, {Lo: 89, Hi: 90}}, resumed: 2},
		{name: "id 0 done", ids: idRange(0, 15), size: 10, done: []Range{{0, 0}},
			want: []Chunk{{Lo: 0, Hi: 10}, {Lo: 10, Hi: 15}}, resumed: 1},
		{name: "id 0 not done", ids: idRange(0, 15), size: 10, done: []Range{{12, 13}},
			want: []Chunk{{Lo: 0, Hi: 9, IncludeLo: true}, {Lo: 9, Hi: 11}, {Lo: 13, Hi: 15}}, resumed: 2},
		{name: "top of the id space done", ids: []uint64{1, maxID - 1, maxID}, size: 10, done: []Range{{maxID - 1, maxID}},
			want: []Chunk{{Lo: 0, Hi: 10}}, resumed: 2},
		{name: "top of the id space not done", ids: []uint64{1, maxID - 1, maxID}, size: 10, done: []Range{{1, 1}},
			want: []Chunk{{Lo: maxID - 2, Hi: maxID}}, resumed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped, resumed := planAll(t, tt.ids, tt.size, tt.done)
			if !slices.Equal(got, tt.want) {
				t.Errorf("chunks %v, want %v", got, tt.want)
			}
			if resumed != tt.resumed {
				t.Errorf("resumed %d ids, want %d", resumed, tt.resumed)
			}
			var spans uint64
			for _, c := range got {
				spans += c.Span()
			}
			lo, hi := slices.Min(tt.ids), slices.Max(tt.ids)
			if total := hi - lo + 1; total != 0 && spans+skipped != total { // total wraps for the whole id space
				t.Errorf("chunks span %d and %d ids were skipped: %d, want the range's %d", spans, skipped, spans+skipped, total)
			}
		})
	}
}

// chunkRange is the range of ids a chunk covers.
func chunkRange(c Chunk) Range {
	if c.IncludeLo {
		return Range{Lo: c.Lo, Hi: c.Hi}
	}
	return Range{Lo: c.Lo + 1, Hi: c.Hi}
}

// Random ids and done ranges: every existing id is in exactly one of a
// chunk or a done range, and no chunk reaches into a done range.
func TestPlannerSkipsDoneRangesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		var ids []uint64
		for id := uint64(rng.IntN(3)); id < 2000; id += 1 + uint64(rng.ExpFloat64()*5) {
			ids = append(ids, id)
		}
		var done []Range
		for range rng.IntN(6) {
			lo := rng.Uint64N(2100)
			done = append(done, Range{lo, lo + rng.Uint64N(300)})
		}
		size := 1 + rng.Uint64N(60)
		chunks, _, _ := planAll(t, ids, size, done)
		for _, id := range ids {
			inDone := inRanges(done, id)
			n := 0
			for _, c := range chunks {
				if r := chunkRange(c); id >= r.Lo && id <= r.Hi {
					n++
				}
			}
			if inDone && n != 0 || !inDone && n != 1 {
				t.Fatalf("case %d (size %d, done %v): id %d is in %d chunks, done %v; want exactly one of them", i, size, done, id, n, inDone)
			}
		}
		for _, c := range chunks {
			r := chunkRange(c)
			for _, d := range done {
				if r.Lo <= d.Hi && d.Lo <= r.Hi {
					t.Fatalf("case %d: chunk %v overlaps done range %v", i, c, d)
				}
			}
			if c.Span() > size {
				t.Fatalf("case %d: chunk %v longer than %d", i, c, size)
			}
		}
	}
}

// memKV is a KV in memory; a nil value is a tombstone.
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok && v != nil, nil
}

func (k *memKV) Put(_ context.Context, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = v
	return nil
}

// A run interrupted on a binary from before the progress moved into this
// package (cmd/sluice's windowCheckpoints) resumes on this one: same key,
// same JSON, both ways.
func TestStateCheckpointsResumeTheEarlierFormat(t *testing.T) {
	cfg := testConfig() // the window 2025-10-01 00:00 .. 2025-10-02 00:00
	const key = "progress/source_db.raw_records/2025-10-01T00:00:00/2025-10-02T00:00:00/sluice.events"
	if got := ProgressKey(cfg.Database, cfg.Table, cfg.Start, cfg.End, "sluice.events"); got != key {
		t.Fatalf("ProgressKey = %q, want %q", got, key)
	}
	// As the earlier binary saved it.
	const earlier = `{"run_id":"4f1c2a9e","saved_at":"2026-11-30T10:15:02.123456789Z","done":[[1,50],[61,70]]}`
	kv := &memKV{m: map[string][]byte{key: []byte(earlier)}}
	cp := &StateCheckpoints{KV: kv, Key: key, RunID: "b7d0e311", Where: "sluice.events.progress", Log: slog.New(slog.DiscardHandler)}
	rs, err := cp.Load(t.Context())
	if err != nil || !slices.Equal(rs, []Range{{1, 50}, {61, 70}}) {
		t.Fatalf("Load = %v, %v; want [1,50] [61,70]", rs, err)
	}

	src := newFakeSource(idRange(1, 100)...)
	sink := newScriptedSink()
	bf, _ := newTestBackfill(t, cfg, src, sink)
	bf.SetCheckpoints(cp)
	if err := bf.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := sink.ackedIDs(), slices.Concat(idRange(51, 60), idRange(71, 100)); !slices.Equal(got, want) {
		t.Errorf("resumed run sent ids %v, want %v", got, want)
	}

	// What this binary saves, the earlier one reads: the same fields in the
	// same order, the times in RFC 3339 with nanoseconds.
	saved := string(kv.m[key])
	if !regexp.MustCompile(`^\{"run_id":"b7d0e311","saved_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z","done":\[\[1,100\]\]\}$`).MatchString(saved) {
		t.Errorf("saved %s, want the earlier format with done [[1,100]]", saved)
	}
	var old struct { // cmd/sluice's savedProgress of the earlier binary
		RunID   string      `json:"run_id"`
		SavedAt time.Time   `json:"saved_at"`
		Done    [][2]uint64 `json:"done"`
	}
	if err := json.Unmarshal([]byte(saved), &old); err != nil || old.RunID != "b7d0e311" || old.SavedAt.IsZero() || len(old.Done) != 1 {
		t.Errorf("the earlier format reads %s as %+v, %v", saved, old, err)
	}

	if err := bf.Complete(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, ok := kv.m[key]; !ok || v != nil {
		t.Errorf("after Complete the key holds %q (present %v), want a tombstone", v, ok)
	}
	if rs, err := cp.Load(t.Context()); err != nil || rs != nil {
		t.Errorf("Load after Complete = %v, %v; want nothing", rs, err)
	}
}

func TestStateCheckpointsUnreadableValue(t *testing.T) {
	kv := &memKV{m: map[string][]byte{"k": []byte(`{"done":"not ranges"}`)}}
	cp := &StateCheckpoints{KV: kv, Key: "k", Log: slog.New(slog.DiscardHandler)}
	if rs, err := cp.Load(t.Context()); err != nil || rs != nil {
		t.Errorf("Load of an unreadable value = %v, %v; want no progress and no error (a full re-read)", rs, err)
	}
}
