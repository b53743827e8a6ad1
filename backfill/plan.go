package backfill

import (
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
// empty range (minID > maxID) gives no chunks.
func Plan(minID, maxID, size uint64) []Chunk {
	if minID > maxID {
		return nil
	}
	if size == 0 {
		size = 1
	}
	n := (maxID-minID)/size + 1
	chunks := make([]Chunk, 0, n)
	for start := minID; ; {
		end := maxID
		if maxID-start >= size { // no overflow: start+size-1 < maxID <= MaxUint64
			end = start + size - 1
		}
		c := Chunk{Lo: start - 1, Hi: end}
		if start == 0 {
			c = Chunk{Lo: 0, Hi: end, IncludeLo: true}
		}
		chunks = append(chunks, c)
		if end == maxID || end == math.MaxUint64 {
			return chunks
		}
		start = end + 1
	}
}
