package backfill

import (
	"context"
	"fmt"
	"math"
)

// Chunk is one keyset range of source ids: (Lo, Hi], or [Lo, Hi] when
// IncludeLo is set. IncludeLo is only needed for a range starting at id 0,
// whose exclusive lower bound would be -1 and cannot be an unsigned id.
type Chunk struct {
	Lo, Hi    uint64
	IncludeLo bool
}

// String renders the range the way the error messages and logs name a chunk.
func (c Chunk) String() string {
	if c.IncludeLo {
		return fmt.Sprintf("id [%d,%d]", c.Lo, c.Hi)
	}
	return fmt.Sprintf("id (%d,%d]", c.Lo, c.Hi)
}

// Span is how many ids the chunk covers.
func (c Chunk) Span() uint64 {
	if c.IncludeLo {
		return c.Hi - c.Lo + 1
	}
	return c.Hi - c.Lo
}

// Plan splits the inclusive id range [minID, maxID] into consecutive chunks
// of at most size ids. Every id of the range is in exactly one chunk,
// including the remainder after dividing it and the ids at both edges; an
// empty range (minID > maxID) gives no chunks. Run does not call Plan: it
// walks the same chunks lazily and skips id gaps (see Planner).
func Plan(minID, maxID, size uint64) []Chunk {
	if minID > maxID {
		return nil
	}
	var chunks []Chunk
	for start := minID; ; {
		c, last := chunkAt(start, maxID, size)
		chunks = append(chunks, c)
		if last {
			return chunks
		}
		start = c.Hi + 1
	}
}

// chunkAt returns the chunk of at most size ids that starts at id start and
// ends at maxID at the latest, and whether it is the last one.
func chunkAt(start, maxID, size uint64) (c Chunk, last bool) {
	size = max(size, 1)
	end := maxID
	if maxID-start >= size { // no overflow: start+size-1 < maxID <= MaxUint64
		end = start + size - 1
	}
	c = Chunk{Lo: start - 1, Hi: end}
	if start == 0 {
		c = Chunk{Lo: 0, Hi: end, IncludeLo: true}
	}
	return c, end == maxID || end == math.MaxUint64
}

// Planner hands out the chunks of [minID, maxID] one at a time. Before each
// chunk it asks nextID for the smallest id at or after the chunk's start, so
// a gap in the ids (a purge, an outlier id near 2^63) costs one lookup
// instead of millions of empty chunks: there are never more chunks than rows.
type Planner struct {
	next, maxID, size uint64
	done              bool
	nextID            func(ctx context.Context, from uint64) (id uint64, ok bool, err error)
}

// NewPlanner returns a planner for [minID, maxID]; nextID reports the
// smallest existing id >= from (ok false when there is none).
func NewPlanner(minID, maxID, size uint64, nextID func(ctx context.Context, from uint64) (uint64, bool, error)) *Planner {
	return &Planner{next: minID, maxID: maxID, size: size, done: minID > maxID, nextID: nextID}
}

// Next returns the next chunk, or ok false when the range is covered. The
// ids it skipped form the returned skipped count, for progress.
func (p *Planner) Next(ctx context.Context) (c Chunk, skipped uint64, ok bool, err error) {
	if p.done {
		return Chunk{}, 0, false, nil
	}
	from := p.next
	id, found, err := p.nextID(ctx, from)
	if err != nil {
		return Chunk{}, 0, false, err
	}
	if !found || id > p.maxID {
		p.done = true
		return Chunk{}, p.maxID - from + 1, false, nil
	}
	skipped = id - from
	c, last := chunkAt(id, p.maxID, p.size)
	p.done = last
	p.next = c.Hi + 1
	return c, skipped, true, nil
}
