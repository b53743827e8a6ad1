package consumer

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

var (
	interleavings    = flag.Int("interleavings", 3000, "keys (histories) in TestIntegrationInterleavings; raise it for a longer run")
	interleavingSeed = flag.Uint64("interleavings.seed", 0, "seed of TestIntegrationInterleavings (0: from the clock, logged)")
)

// TestIntegrationInterleavings is the property that the target ends as the
// source's last state of every key, whatever order the pipeline delivers
// the key's changes in. For each key it makes a random source history
// (inserts, updates that may return to an earlier state, deletes and
// re-inserts, with the same or a new source id), with backfill reads of the
// key's state taken between any two changes, labelled with a position
// between theirs. It then delivers them as the pipeline may:
//
//   - the tail's changes in their binlog order (one producer, one
//     partition per key);
//   - every read anywhere among them, since a backfill's producer and the
//     tail's are independent (a late read after the changes that follow
//     it, or a read ahead of the change it reflects);
//   - cut into batches of any size, so changes merge in one batch or apply
//     one by one;
//   - with redeliveries: a batch written but not committed to Kafka (a
//     crash between the two) is delivered again, cut differently.
//
// The keys are independent, so all of them go through the real writer
// side by side, each round's batches as one batch of many keys, against
// the real MariaDB, through the first-load and the look-up paths and then
// the plain upsert alone.
//
//	go test ./consumer -run Interleavings -interleavings 20000
func TestIntegrationInterleavings(t *testing.T) {
	db, _ := servers(t)
	seed := *interleavingSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d, %d keys (-interleavings.seed %d reproduces it)", seed, *interleavings, seed)
	for _, path := range []struct {
		name    string
		upserts bool // the upsert alone: no look-up, no bulk load
	}{{"default paths", false}, {"upsert alone", true}} {
		t.Run(path.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			database := fmt.Sprintf("it_interleave_%d_%t", seed%1e6, path.upserts)
			if err := schema.MigrateTarget(ctx, db, database); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + database) })
			w, err := newWriter(ctx, db, database, schema.TargetTable, 3, 10*time.Millisecond, NewMetrics(nil))
			if err != nil {
				t.Fatal(err)
			}
			if path.upserts {
				w.lookupOK, w.loadOK, w.binOK = false, false, false
			}
			rng := rand.New(rand.NewPCG(seed, 19))
			keys := make([]history, *interleavings)
			rounds := 0
			for i := range keys {
				keys[i] = newHistory(rng, i)
				rounds = max(rounds, len(keys[i].batches))
			}
			b := newBatch(10000, time.Hour)
			now := time.Now()
			for round := range rounds {
				for i := range keys {
					h := &keys[i]
					if round >= len(h.batches) {
						continue
					}
					for _, at := range h.batches[round] {
						ev := h.delivery[at]
						b.add(&kgo.Record{Topic: "t", Partition: int32(i % 12), Offset: int64(at)}, &ev, now)
					}
				}
				b.final()
				if _, err := w.write(ctx, b.items); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				b.reset()
			}
			got := map[string]sourceState{}
			rows, err := db.QueryContext(ctx, "SELECT device_type, message, source_id FROM "+database+".records")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var device, msg string
				var id uint64
				if err := rows.Scan(&device, &msg, &id); err != nil {
					t.Fatal(err)
				}
				got[device] = sourceState{exists: true, msg: msg, id: id}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			failed := 0
			for i := range keys {
				h := &keys[i]
				if g := got[h.device]; g != h.last {
					if failed++; failed <= 3 {
						t.Errorf("key %s ends as %+v, the source as %+v\n%s", h.device, g, h.last, h)
					}
				}
			}
			if failed > 3 {
				t.Errorf("and %d more keys", failed-3)
			}
		})
	}
}

// sourceState is a key's row in the source, as the target stores it.
type sourceState struct {
	exists bool
	msg    string
	id     uint64
}

// history is one key's source changes and backfill reads, and the order the
// pipeline delivers them in.
type history struct {
	device   string
	last     sourceState    // the source's state at the end
	delivery []schema.Event // in partition order
	batches  [][]int        // positions in delivery, batch by batch, redeliveries included
}

func newHistory(rng *rand.Rand, n int) history {
	h := history{device: fmt.Sprintf("key-%d", n)}
	states := []string{"STATE A", "STATE B", "STATE C"}
	var tail, reads []schema.Event
	var cur sourceState
	ids := uint64(1)
	pos := uint64(1000)
	event := func(op schema.Op, st sourceState, at uint64) schema.Event {
		r := testRow(0, h.device)
		r.ID, r.Message.String = st.id, st.msg
		ev := schema.Event{Op: op, Source: schema.Source{File: "mysql-bin.000003", Pos: at}}
		switch op {
		case schema.OpDelete:
			ev.Before = r
		case schema.OpRead:
			ev.After, ev.Source.Snapshot = r, "true"
		default:
			ev.After = r
		}
		return ev
	}
	read := func() {
		// A backfill read sees the state between two changes: its position
		// lies after the last change and before the next.
		for cur.exists && rng.IntN(5) < 2 {
			reads = append(reads, event(schema.OpRead, cur, pos+1+uint64(rng.IntN(900))))
		}
	}
	read()
	for range 2 + rng.IntN(7) {
		pos += 1000
		switch {
		case !cur.exists:
			if rng.IntN(3) > 0 { // a new source id, or the same one inserted again
				ids++
			}
			cur = sourceState{exists: true, msg: states[rng.IntN(len(states))], id: ids}
			tail = append(tail, event(schema.OpCreate, cur, pos))
		case rng.IntN(4) == 0:
			tail = append(tail, event(schema.OpDelete, cur, pos))
			cur = sourceState{}
		default: // a real change: MariaDB logs no event for an update that changes nothing
			next := cur
			for next.msg == cur.msg {
				next.msg = states[rng.IntN(len(states))]
			}
			tail = append(tail, event(schema.OpUpdate, next, pos))
			cur = next
		}
		read()
	}
	h.last = cur
	// The tail's changes in order, the reads anywhere among them.
	rng.Shuffle(len(reads), func(i, j int) { reads[i], reads[j] = reads[j], reads[i] })
	for len(tail) > 0 || len(reads) > 0 {
		if len(reads) > 0 && (len(tail) == 0 || rng.IntN(len(tail)+len(reads)) < len(reads)) {
			h.delivery, reads = append(h.delivery, reads[0]), reads[1:]
		} else {
			h.delivery, tail = append(h.delivery, tail[0]), tail[1:]
		}
	}
	// Batches of 1 to 4 records; after one, now and then a crash before its
	// offsets commit, so it comes again, cut anew.
	for at := 0; at < len(h.delivery); {
		end := min(at+1+rng.IntN(4), len(h.delivery))
		var b []int
		for i := at; i < end; i++ {
			b = append(b, i)
		}
		h.batches = append(h.batches, b)
		if rng.IntN(5) > 0 || len(h.batches) > 3*len(h.delivery) {
			at = end
		}
	}
	return h
}

// String shows the history, for a failure.
func (h *history) String() string {
	var sb strings.Builder
	for i := range h.delivery {
		ev := &h.delivery[i]
		st := "-"
		if r := ev.After; r != nil {
			st = fmt.Sprintf("%s id %d", r.Message.String, r.ID)
		}
		fmt.Fprintf(&sb, "  delivery %d: %s at %d: %s\n", i, ev.Op, ev.Source.Pos, st)
	}
	fmt.Fprintf(&sb, "  batches %v", h.batches)
	return sb.String()
}
