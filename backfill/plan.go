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
// Ranges given to Skip (the progress of an earlier run) are jumped over
// without a lookup, and no chunk reaches into one.
type Planner struct {
	next, maxID, size uint64
	done              bool
	skip              []Range // coalesced, sorted; ranges ending before next are dropped
	resumed           uint64  // ids jumped over because an earlier run did them
	nextID            func(ctx context.Context, from uint64) (id uint64, ok bool, err error)
}

// NewPlanner returns a planner for [minID, maxID]; nextID reports the
// smallest existing id >= from (ok false when there is none).
func NewPlanner(minID, maxID, size uint64, nextID func(ctx context.Context, from uint64) (uint64, bool, error)) *Planner {
	return &Planner{next: minID, maxID: maxID, size: size, done: minID > maxID, nextID: nextID}
}

// Skip makes the planner jump over ranges that are already done. Call it
// before the first Next.
func (p *Planner) Skip(done []Range) { p.skip = Coalesce(done) }

// Resumed is how many ids of [minID, maxID] Next has jumped over because
// they were in a skipped range.
func (p *Planner) Resumed() uint64 { return p.resumed }

// Pos is the first id the next chunk (or skip) starts from: the chunk Next
// returns covers Range{Pos() before the call, chunk.Hi}, gaps and skipped
// ranges included.
func (p *Planner) Pos() uint64 { return p.next }

// skipAt returns the skipped range holding id, dropping the ranges that end
// before it (the planner only moves forward).
func (p *Planner) skipAt(id uint64) (Range, bool) {
	for len(p.skip) > 0 && p.skip[0].Hi < id {
		p.skip = p.skip[1:]
	}
	if len(p.skip) > 0 && p.skip[0].Lo <= id {
		return p.skip[0], true
	}
	return Range{}, false
}

// Next returns the next chunk, or ok false when the range is covered. The
// ids it jumped over (id gaps and skipped ranges) form the returned skipped
// count, for progress.
func (p *Planner) Next(ctx context.Context) (c Chunk, skipped uint64, ok bool, err error) {
	for !p.done {
		from := p.next
		if r, in := p.skipAt(from); in {
			end := min(r.Hi, p.maxID)
			n := end - from + 1
			skipped += n
			p.resumed += n
			if end == p.maxID {
				p.done = true
				break
			}
			p.next = end + 1
			continue
		}
		id, found, err := p.nextID(ctx, from)
		if err != nil {
			return Chunk{}, skipped, false, err
		}
		if !found || id > p.maxID {
			p.done = true
			skipped += p.maxID - from + 1
			break
		}
		if _, in := p.skipAt(id); in { // the gap ends inside a done range
			skipped += id - from
			p.next = id
			continue
		}
		skipped += id - from
		limit := p.maxID
		if len(p.skip) > 0 && p.skip[0].Lo > id { // stop short of the next done range
			limit = min(limit, p.skip[0].Lo-1)
		}
		c, _ = chunkAt(id, limit, p.size)
		p.done = c.Hi == p.maxID
		p.next = c.Hi + 1 // c.Hi < maxID <= MaxUint64 unless done
		return c, skipped, true, nil
	}
	return Chunk{}, skipped, false, nil
}
