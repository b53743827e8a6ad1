package consumer

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// batch collects records until it is full or its linger time is up. It keeps
// the next offset to commit for every partition it holds records of,
// including records that carried nothing to apply (tombstones).
type batch struct {
	size    int
	linger  time.Duration
	offsets map[string]map[int32]kgo.EpochOffset
	firsts  map[string]map[int32]int64 // the offset of each partition's first record, for errors
	records int                        // records taken, applied or not, and transaction markers
	markers int                        // of records: transaction markers
	dead    []*kgo.Record              // dead letters to send before the offsets commit
	started time.Time                  // when the first record arrived
}

func newBatch(size int, linger time.Duration) *batch {
	return &batch{size: size, linger: linger,
		offsets: map[string]map[int32]kgo.EpochOffset{}, firsts: map[string]map[int32]int64{}}
}

// add takes a record: its offset is committed with the batch. What it
// carries, the record path keeps (tablePath.take).
func (b *batch) add(r *kgo.Record, now time.Time) {
	if b.records == 0 {
		b.started = now
	}
	b.records++
	t := b.offsets[r.Topic]
	if t == nil {
		t = map[int32]kgo.EpochOffset{}
		b.offsets[r.Topic] = t
	}
	if _, ok := t[r.Partition]; !ok {
		f := b.firsts[r.Topic]
		if f == nil {
			f = map[int32]int64{}
			b.firsts[r.Topic] = f
		}
		f[r.Partition] = r.Offset
	}
	t[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
}

// span names the records of the batch by their Kafka coordinates, for an
// error that leaves them uncommitted: "topic t partitions 0 offsets 10-19,
// 3 offsets 7-7". Beyond maxSpanPartitions partitions it says how many more.
func (b *batch) span() string {
	const maxSpanPartitions = 8
	var sb strings.Builder
	for _, topic := range slices.Sorted(maps.Keys(b.offsets)) {
		if sb.Len() > 0 {
			sb.WriteString("; ")
		}
		parts := slices.Sorted(maps.Keys(b.offsets[topic]))
		fmt.Fprintf(&sb, "topic %s partitions ", topic)
		for i, p := range parts {
			if i == maxSpanPartitions {
				fmt.Fprintf(&sb, " and %d more", len(parts)-i)
				break
			}
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "%d offsets %d-%d", p, b.firsts[topic][p], b.offsets[topic][p].Offset-1)
		}
	}
	return sb.String()
}

// mark takes a transaction marker: nothing to apply, but its offset is
// committed with the batch.
func (b *batch) mark(r *kgo.Record, now time.Time) {
	b.add(r, now)
	b.markers++
}

// room is how many more records the batch takes.
func (b *batch) room() int { return b.size - b.records }

// full reports whether the batch holds its size.
func (b *batch) full() bool { return b.records >= b.size }

// deadline is when the batch must be flushed even if not full.
func (b *batch) deadline() time.Time { return b.started.Add(b.linger) }

// due reports whether the batch must be flushed now: full, or non-empty and
// past its linger time.
func (b *batch) due(now time.Time) bool {
	return b.records > 0 && (b.full() || !now.Before(b.deadline()))
}

// reset empties the batch for reuse.
func (b *batch) reset() {
	clear(b.dead)
	b.dead = b.dead[:0]
	clear(b.offsets)
	clear(b.firsts)
	b.records, b.markers = 0, 0
	b.started = time.Time{}
}
