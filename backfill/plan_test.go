package backfill

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

const maxID = math.MaxUint64

// planOrTimeout walks a Planner over every id of [lo, hi] (nextID finds each
// one, so no id is a gap) and returns its chunks, but fails the test instead
// of hanging if the walk never ends (an overflow at the top of the id range
// would plan for ever).
func planOrTimeout(t *testing.T, lo, hi, size uint64) []Chunk {
	t.Helper()
	next := func(_ context.Context, from uint64) (uint64, bool, error) { return from, from >= lo && from <= hi, nil }
	done := make(chan []Chunk, 1)
	go func() {
		p := NewPlanner(lo, hi, size, next)
		var chunks []Chunk
		for {
			c, _, ok, err := p.Next(context.Background())
			if err != nil || !ok {
				done <- chunks
				return
			}
			chunks = append(chunks, c)
		}
	}()
	select {
	case c := <-done:
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("planning [%d, %d] in chunks of %d did not end within 10s", lo, hi, size)
		return nil
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name         string
		lo, hi, size uint64
		want         []Chunk
	}{
		{name: "empty range", lo: 10, hi: 9, size: 5, want: nil},
		{name: "empty range at the top", lo: maxID, hi: maxID - 1, size: 5, want: nil},
		{name: "one id", lo: 7, hi: 7, size: 10, want: []Chunk{{Lo: 6, Hi: 7}}},
		{name: "exact multiple of size", lo: 1, hi: 30, size: 10,
			want: []Chunk{{Lo: 0, Hi: 10}, {Lo: 10, Hi: 20}, {Lo: 20, Hi: 30}}},
		{name: "remainder chunk", lo: 1, hi: 25, size: 10,
			want: []Chunk{{Lo: 0, Hi: 10}, {Lo: 10, Hi: 20}, {Lo: 20, Hi: 25}}},
		{name: "size 1", lo: 5, hi: 8, size: 1,
			want: []Chunk{{Lo: 4, Hi: 5}, {Lo: 5, Hi: 6}, {Lo: 6, Hi: 7}, {Lo: 7, Hi: 8}}},
		{name: "size larger than the range", lo: 100, hi: 150, size: 1000,
			want: []Chunk{{Lo: 99, Hi: 150}}},
		{name: "size equal to the range", lo: 100, hi: 149, size: 50,
			want: []Chunk{{Lo: 99, Hi: 149}}},
		{name: "range one longer than size", lo: 100, hi: 150, size: 50,
			want: []Chunk{{Lo: 99, Hi: 149}, {Lo: 149, Hi: 150}}},
		{name: "min 0 includes the lower bound", lo: 0, hi: 25, size: 10,
			want: []Chunk{{Lo: 0, Hi: 9, IncludeLo: true}, {Lo: 9, Hi: 19}, {Lo: 19, Hi: 25}}},
		{name: "only id 0", lo: 0, hi: 0, size: 10,
			want: []Chunk{{Lo: 0, Hi: 0, IncludeLo: true}}},
		{name: "max is MaxUint64", lo: maxID - 25, hi: maxID, size: 10,
			want: []Chunk{{Lo: maxID - 26, Hi: maxID - 16}, {Lo: maxID - 16, Hi: maxID - 6}, {Lo: maxID - 6, Hi: maxID}}},
		{name: "only MaxUint64", lo: maxID, hi: maxID, size: 10,
			want: []Chunk{{Lo: maxID - 1, Hi: maxID}}},
		{name: "MaxUint64 with size 1", lo: maxID - 2, hi: maxID, size: 1,
			want: []Chunk{{Lo: maxID - 3, Hi: maxID - 2}, {Lo: maxID - 2, Hi: maxID - 1}, {Lo: maxID - 1, Hi: maxID}}},
		{name: "whole id space in size MaxUint64", lo: 0, hi: maxID, size: maxID,
			want: []Chunk{{Lo: 0, Hi: maxID - 1, IncludeLo: true}, {Lo: maxID - 1, Hi: maxID}}},
		{name: "whole id space in two halves", lo: 0, hi: maxID, size: 1 << 63,
			want: []Chunk{{Lo: 0, Hi: 1<<63 - 1, IncludeLo: true}, {Lo: 1<<63 - 1, Hi: maxID}}},
		{name: "size MaxUint64 below the top", lo: 1, hi: maxID - 1, size: maxID,
			want: []Chunk{{Lo: 0, Hi: maxID - 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planOrTimeout(t, tt.lo, tt.hi, tt.size)
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan of [%d, %d] by %d =\n  %v\nwant\n  %v", tt.lo, tt.hi, tt.size, got, tt.want)
			}
			if tt.lo <= tt.hi {
				checkCover(t, got, tt.lo, tt.hi, tt.size)
			}
		})
	}
}

// checkCover asserts by arithmetic that chunks cover [lo, hi] exactly once,
// in order, with no chunk longer than size and no more chunks than needed.
func checkCover(t *testing.T, chunks []Chunk, lo, hi, size uint64) {
	t.Helper()
	if len(chunks) == 0 {
		t.Fatalf("plan of [%d, %d] by %d: no chunks for a non-empty range", lo, hi, size)
	}
	if want := (hi-lo)/size + 1; uint64(len(chunks)) != want {
		t.Errorf("plan of [%d, %d] by %d: %d chunks, want %d", lo, hi, size, len(chunks), want)
	}
	next := lo // first id the next chunk must start at
	for i, c := range chunks {
		first := c.Lo + 1
		if c.IncludeLo {
			first = c.Lo
		}
		if c.IncludeLo != (first == 0) {
			t.Errorf("chunk %d %v: IncludeLo=%v, want it only for a chunk starting at id 0", i, c, c.IncludeLo)
		}
		if !c.IncludeLo && c.Lo == math.MaxUint64 {
			t.Fatalf("chunk %d %v: exclusive lower bound MaxUint64 starts past the id space", i, c)
		}
		if first != next {
			t.Fatalf("chunk %d %v starts at id %d, want %d (gap or overlap)", i, c, first, next)
		}
		if c.Hi < first {
			t.Fatalf("chunk %d %v is empty or inverted", i, c)
		}
		if c.Span() != c.Hi-first+1 {
			t.Errorf("chunk %d %v: Span() = %d, want %d", i, c, c.Span(), c.Hi-first+1)
		}
		if c.Span() > size {
			t.Errorf("chunk %d %v: Span() = %d, more than size %d", i, c, c.Span(), size)
		}
		if c.Hi == hi {
			if i != len(chunks)-1 {
				t.Fatalf("chunk %d %v reaches max id %d but %d chunks follow", i, c, hi, len(chunks)-1-i)
			}
			return
		}
		if c.Hi > hi {
			t.Fatalf("chunk %d %v goes past max id %d", i, c, hi)
		}
		next = c.Hi + 1 // c.Hi < hi, so no overflow
	}
	t.Fatalf("plan of [%d, %d] by %d: chunks end at %d, before max id %d", lo, hi, size, chunks[len(chunks)-1].Hi, hi)
}

func TestPlanCoversRandomRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const maxChunks = 5000 // keeps every plan small; the range itself may be huge
	for i := range 2000 {
		var lo, hi uint64
		switch i % 4 {
		case 0: // anywhere in the id space
			lo, hi = rng.Uint64(), rng.Uint64()
			if lo > hi {
				lo, hi = hi, lo
			}
		case 1: // from id 0
			lo, hi = 0, rng.Uint64N(1<<20)
		case 2: // up to the top of the id space
			lo, hi = maxID-rng.Uint64N(1<<20), maxID
		case 3: // small ids
			lo = rng.Uint64N(1000)
			hi = lo + rng.Uint64N(1000)
		}
		minSize := (hi-lo)/maxChunks + 1
		size := minSize + rng.Uint64N(max(1, (hi-lo)/4+1))
		if size < minSize { // the sum wrapped
			size = maxID
		}
		chunks := planOrTimeout(t, lo, hi, size)
		checkCover(t, chunks, lo, hi, size)
		if t.Failed() {
			t.Fatalf("failed for the plan of [%d, %d] by %d", lo, hi, size)
		}
	}
}

func TestPlanSizeZero(t *testing.T) {
	// A zero size would never advance; the planner treats it as 1 rather
	// than looping or dividing by zero.
	got := planOrTimeout(t, 3, 5, 0)
	want := []Chunk{{Lo: 2, Hi: 3}, {Lo: 3, Hi: 4}, {Lo: 4, Hi: 5}}
	if !slices.Equal(got, want) {
		t.Errorf("plan of [3, 5] by 0 = %v, want %v", got, want)
	}
}

func TestChunk(t *testing.T) {
	tests := []struct {
		name string
		c    Chunk
		str  string
		span uint64
	}{
		{name: "exclusive", c: Chunk{Lo: 10, Hi: 20}, str: "id (10,20]", span: 10},
		{name: "one id", c: Chunk{Lo: 6, Hi: 7}, str: "id (6,7]", span: 1},
		{name: "inclusive", c: Chunk{Lo: 0, Hi: 9, IncludeLo: true}, str: "id [0,9]", span: 10},
		{name: "only id 0", c: Chunk{Lo: 0, Hi: 0, IncludeLo: true}, str: "id [0,0]", span: 1},
		{name: "top of the id space", c: Chunk{Lo: maxID - 1, Hi: maxID}, str: "id (18446744073709551614,18446744073709551615]", span: 1},
		{name: "whole id space but the top", c: Chunk{Lo: 0, Hi: maxID - 1, IncludeLo: true}, str: "id [0,18446744073709551614]", span: maxID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := tt.c.Span(); got != tt.span {
				t.Errorf("Span() = %d, want %d", got, tt.span)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	start := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 0, 1)
	valid := func() Config {
		c := DefaultConfig()
		c.Start, c.End = start, end
		return c
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" for no error
	}{
		{name: "defaults with a window", mutate: func(*Config) {}},
		{name: "one second window", mutate: func(c *Config) { c.End = c.Start.Add(time.Second) }},
		{name: "one reader", mutate: func(c *Config) { c.Readers = 1 }},
		{name: "chunk size 1", mutate: func(c *Config) { c.ChunkSize = 1 }},
		{name: "no start", mutate: func(c *Config) { c.Start = time.Time{} }, wantErr: "start and end are required"},
		{name: "no end", mutate: func(c *Config) { c.End = time.Time{} }, wantErr: "start and end are required"},
		{name: "end before start", mutate: func(c *Config) { c.Start, c.End = end, start },
			wantErr: "end 2024-03-04 00:00:00 is not after start 2024-03-05 00:00:00"},
		{name: "end equal to start", mutate: func(c *Config) { c.End = c.Start }, wantErr: "is not after start"},
		{name: "zero chunk size", mutate: func(c *Config) { c.ChunkSize = 0 }, wantErr: "chunk size"},
		{name: "zero readers", mutate: func(c *Config) { c.Readers = 0 }, wantErr: "readers must be at least 1, got 0"},
		{name: "negative readers", mutate: func(c *Config) { c.Readers = -3 }, wantErr: "got -3"},
		{name: "empty database", mutate: func(c *Config) { c.Database = "" }, wantErr: "source database"},
		{name: "empty table", mutate: func(c *Config) { c.Table = "" }, wantErr: "source table"},
		{name: "table name too long", mutate: func(c *Config) { c.Table = strings.Repeat("t", 65) }, wantErr: "source table"},
		{name: "odd but quotable table name", mutate: func(c *Config) { c.Table = "raw`records; DROP" }},
		{name: "one attempt", mutate: func(c *Config) { c.ChunkAttempts = 1 }},
		{name: "no backoff", mutate: func(c *Config) { c.ChunkBackoff = 0 }},
		{name: "zero attempts", mutate: func(c *Config) { c.ChunkAttempts = 0 }, wantErr: "chunk attempts must be at least 1, got 0"},
		{name: "negative backoff", mutate: func(c *Config) { c.ChunkBackoff = -time.Second }, wantErr: "chunk backoff"},
		{name: "zero checkpoint interval", mutate: func(c *Config) { c.CheckpointInterval = 0 }, wantErr: "checkpoint interval"},
		{name: "zero checkpoint timeout", mutate: func(c *Config) { c.CheckpointTimeout = 0 }, wantErr: "checkpoint timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate() = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.ChunkSize != 10000 || c.Readers < 2 || c.Database != "source_db" || c.Table != "raw_records" ||
		c.ChunkAttempts != 5 || c.ChunkBackoff != 200*time.Millisecond || c.CheckpointInterval != 500*time.Millisecond {
		t.Errorf("DefaultConfig() = %+v", c)
	}
	if err := c.Validate(); err == nil {
		t.Error("DefaultConfig() without a window validated; the window must be required")
	}
}

// TestTimeSlices checks that the id-range query's slices cover the window
// exactly once, in order, on whole seconds, for windows that do and do not
// divide evenly and for windows shorter than the slice count.
func TestTimeSlices(t *testing.T) {
	day := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		start, end time.Time
		n, want    int // slices asked for, slices expected
	}{
		{"a day in one", day, day.AddDate(0, 0, 1), 1, 1},
		{"a day in two", day, day.AddDate(0, 0, 1), 2, 2},
		{"a day in seven", day, day.AddDate(0, 0, 1), 7, 7},
		{"an uneven window", day.Add(13 * time.Second), day.Add(time.Hour + 7*time.Second), 3, 3},
		{"shorter than the slices", day, day.Add(2 * time.Second), 5, 2},
		{"one second", day, day.Add(time.Second), 4, 1},
		{"a fractional start", day.Add(1500 * time.Millisecond), day.Add(4 * time.Second), 3, 3},
		{"a fractional start, a short window", day.Add(1500 * time.Millisecond), day.Add(2 * time.Second), 3, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := timeSlices(tc.start, tc.end, tc.n)
			if len(b)-1 != tc.want {
				t.Fatalf("timeSlices(%s, %s, %d) = %v: %d slices, want %d", tc.start, tc.end, tc.n, b, len(b)-1, tc.want)
			}
			if !b[0].Equal(tc.start) || !b[len(b)-1].Equal(tc.end) {
				t.Fatalf("bounds %v: want them to begin at %s and end at %s", b, tc.start, tc.end)
			}
			for i := 1; i < len(b); i++ {
				if !b[i].After(b[i-1]) {
					t.Fatalf("bounds %v: bound %d does not go up", b, i)
				}
				if i < len(b)-1 && !b[i].Equal(b[i].Truncate(time.Second)) {
					t.Fatalf("bounds %v: inner bound %d is not on a whole second", b, i)
				}
			}
		})
	}
}
