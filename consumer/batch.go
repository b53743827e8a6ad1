package consumer

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// item is one decoded record waiting in a batch: only what the write needs,
// so sorting a 10,000-item batch moves little memory.
type item struct {
	key       schema.Key
	row       *schema.Row // the after image; nil for a delete
	op        schema.Op
	version   uint64 // source binlog position, when hasVersion
	hasVer    bool
	merged    bool // final kept it over other changes of its key in the batch
	partition int32
	offset    int64
	rec       *kgo.Record // the record, for a dead letter if the target refuses the row
}

// batch collects records until it is full or its linger time is up. It keeps
// the next offset to commit for every partition it holds records of,
// including records that carried nothing to apply (tombstones).
type batch struct {
	size    int
	linger  time.Duration
	items   []item
	spare   []item    // final's output, swapped with items
	order   []sortPos // final's sort
	offsets map[string]map[int32]kgo.EpochOffset
	firsts  map[string]map[int32]int64 // the offset of each partition's first record, for errors
	records int                        // records taken, applied or not, and transaction markers
	markers int                        // of records: transaction markers
	dead    []*kgo.Record              // dead letters to send before the offsets commit
	started time.Time                  // when the first record arrived
}

func newBatch(size int, linger time.Duration) *batch {
	return &batch{size: size, linger: linger, items: make([]item, 0, size),
		offsets: map[string]map[int32]kgo.EpochOffset{}, firsts: map[string]map[int32]int64{}}
}

// add takes a record; ev is nil for a record with nothing to apply.
func (b *batch) add(r *kgo.Record, ev *schema.Event, now time.Time) {
	if b.records == 0 {
		b.started = now
	}
	b.records++
	if ev != nil {
		it := item{key: ev.Key(), row: ev.After, op: ev.Op, partition: r.Partition, offset: r.Offset, rec: r}
		if ev.Op == schema.OpDelete {
			it.row = nil
		}
		it.version, it.hasVer = ev.Source.Version()
		if ev.Before != nil && ev.After != nil {
			if old := ev.Before.Key(); old.Compare(it.key) != 0 {
				// A change of the dedupe key in one event (Debezium keys by
				// primary key, so it sends a key change this way; Sluice's
				// tail sends a delete and a create): the old key is gone,
				// with the event's version, in the same transaction as the
				// new key's upsert.
				del := it
				del.key, del.row, del.op = old, nil, schema.OpDelete
				b.items = append(b.items, del)
			}
		}
		b.items = append(b.items, it)
	}
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
	b.add(r, nil, now)
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
	b.items = b.items[:0]
	clear(b.dead)
	b.dead = b.dead[:0]
	clear(b.offsets)
	clear(b.firsts)
	b.records, b.markers = 0, 0
	b.started = time.Time{}
}

// final sorts the items by key, so that concurrent members take row locks in
// the same order, and keeps one change of each key: the one with the highest
// binlog version, and among changes of the same version, or where either has
// none, the later offset. It returns how many changes were merged away.
//
// Keeping the later offset alone is not enough once backfill reads and
// binlog changes of a key share a partition: a backfill read labelled with
// an older position can be produced after a newer change of its key (the
// tail deleted the row at Q, then a chunk read at P < Q is produced), and
// must lose to it. Folding the key's changes in offset order with this rule
// is what applying them one by one does in the target: an upsert applies when
// it is not older than the row (upsertSuffix), a delete when the row is not
// newer, an upsert over a tombstone when it is not older than the delete.
//
// The kept change is marked merged: the changes it replaced are never
// written, so the target must still learn their versions. Otherwise updates
// to b (V1) and back to a (V2) merge into a row equal to the target's,
// which keeps its old version, and a backfill read of b taken between them
// (V1 < P < V2, produced late) would then apply. The writer raises such a
// row's version to the kept change's (writer.raiseVersions).
func (b *batch) final() (merged int) {
	// Sorting positions and gathering the items once moves 24 bytes a
	// swap instead of a whole item, and each position carries its device
	// type's first 16 bytes, which order most pairs without reading the
	// items (BenchmarkBatchFinal). Offsets break ties, so an unstable sort
	// keeps each key's changes in offset order: one key is always in one
	// partition.
	items := b.items
	order := b.order[:0]
	for i := range items {
		hi, lo := prefix16(items[i].key.DeviceType)
		order = append(order, sortPos{hi, lo, int32(i)})
	}
	slices.SortFunc(order, func(x, y sortPos) int {
		if x.hi != y.hi {
			return cmp.Compare(x.hi, y.hi)
		}
		if x.lo != y.lo {
			return cmp.Compare(x.lo, y.lo)
		}
		if c := items[x.pos].key.Compare(items[y.pos].key); c != 0 {
			return c
		}
		return cmp.Compare(items[x.pos].offset, items[y.pos].offset)
	})
	out := b.spare[:0]
	if cap(out) < len(items) {
		out = make([]item, 0, len(items))
	}
	for _, o := range order {
		it := &items[o.pos]
		if n := len(out); n > 0 && out[n-1].key.Compare(it.key) == 0 {
			if supersedes(it, &out[n-1]) {
				out[n-1] = *it
			}
			out[n-1].merged = true
			merged++
			continue
		}
		out = append(out, *it)
	}
	b.order, b.spare, b.items = order, items[:0], out
	return merged
}

// sortPos is an item's position in a batch, with the first 16 bytes of its
// device type as big-endian numbers, zero-padded: where two of them differ,
// they order the device types as strings.Compare does (the first byte that
// differs decides, and a string that ends first is padded with the lowest
// byte); where they are equal, the keys themselves decide.
type sortPos struct {
	hi, lo uint64
	pos    int32
}

func prefix16(s string) (hi, lo uint64) {
	var b [16]byte
	copy(b[:], s)
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// supersedes reports whether next, a change later in the partition than
// kept, replaces it (later says when).
func supersedes(next, kept *item) bool {
	return later(next.hasVer && kept.hasVer, next.version, kept.version, next.op == schema.OpDelete, kept.op == schema.OpDelete)
}

// later reports whether a change of a key replaces kept, the change the
// batch holds for that key: when it is newer; at the same version, unless
// it is a delete and kept is not; and when either has no version (nothing
// to order them by but the partition), always. One version is one binlog
// event, and within one event a key is only ever vacated before it is
// taken (unique keys are checked row by row), so at one version an upsert
// wins over a delete. That matters for an update that changes the key in
// a way the target does not see (a case-only change under a _ci collation,
// or one a key column's transform folds away): the tail carries it as a
// delete of the old key and a create of the new, each in its key's
// partition, and the two reach the target in either order. The writers'
// versioned deletes keep a row of their own version for the same reason.
func later(versioned bool, v, keptV uint64, del, keptDel bool) bool {
	if !versioned {
		return true
	}
	return v > keptV || v == keptV && (!del || keptDel)
}
