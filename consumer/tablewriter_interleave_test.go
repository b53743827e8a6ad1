package consumer

import (
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

var (
	tableInterleavings = flag.Int("table-interleavings", 3000, "keys (histories) in TestIntegrationTableWriterInterleavings")
	interleavingSeed   = flag.Uint64("interleavings.seed", 0, "seed of TestIntegrationTableWriterInterleavings (0: from the clock, logged)")
)

// TestIntegrationTableWriterInterleavings is the property that the target
// ends as the source's last state of every key, whatever order the
// pipeline delivers the key's changes in. For each key it makes a random
// source history (newHistory: inserts, updates that may return to an
// earlier state, deletes and re-inserts, with the same or a new source
// id), with backfill reads of the key's state taken between any two
// changes, labelled with a position between theirs. It then delivers them
// as the pipeline may:
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
// the real MariaDB. The histories are carried onto the mixed table: a key
// is (site, day, seq), the state is the name and the amount.
//
//	go test ./consumer -run TableWriterInterleavings -table-interleavings 20000 -interleavings.seed N
//
// 3000 keys (under 2 s) are what it takes to catch a writer that forgets
// a merged change's version (checked by breaking raise on purpose).
func TestIntegrationTableWriterInterleavings(t *testing.T) {
	e := newGWEnv(t)
	seed := *interleavingSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d, %d keys (-interleavings.seed %d reproduces it)", seed, *tableInterleavings, seed)
	rng := rand.New(rand.NewPCG(seed, 23))
	n := len(e.table.Columns)
	site, day, seq := slicesIndex(e.table, "site"), slicesIndex(e.table, "day"), slicesIndex(e.table, "seq")
	name, amount := slicesIndex(e.table, "name"), slicesIndex(e.table, "amount")
	image := func(key int, r *schema.Row) []schema.Value {
		img := make([]schema.Value, n)
		for i := range img {
			img[i] = schema.Null
		}
		img[site] = schema.Value{B: []byte("p")}
		img[day] = schema.Value{B: []byte("2024-01-15")}
		img[seq] = schema.Value{B: strconv.AppendInt(nil, int64(key), 10)}
		img[name] = schema.Value{B: []byte(r.Message.String)}
		img[amount] = schema.Value{B: append(strconv.AppendUint(nil, r.ID, 10), ".0000"...)}
		return img
	}
	keys := make([]history, *tableInterleavings)
	changes := make([][]schema.Change, len(keys))
	rounds := 0
	for i := range keys {
		keys[i] = newHistory(rng, i)
		rounds = max(rounds, len(keys[i].batches))
		for _, ev := range keys[i].delivery {
			c := schema.Change{Op: ev.Op, Source: ev.Source}
			if ev.Before != nil {
				c.Before = image(i, ev.Before)
			}
			if ev.After != nil {
				c.After = image(i, ev.After)
			}
			changes[i] = append(changes[i], c)
		}
	}
	var recs []TableRecord
	for round := range rounds {
		recs = recs[:0]
		for i := range keys {
			h := &keys[i]
			if round >= len(h.batches) {
				continue
			}
			for _, at := range h.batches[round] {
				recs = append(recs, TableRecord{Change: &changes[i][at], Topic: "t", Partition: int32(i % 12), Offset: int64(at)})
			}
		}
		if res := e.write(recs...); len(res.Rejected) > 0 {
			t.Fatalf("round %d: rejected %v", round, res.Rejected[0].Err)
		}
	}
	got := map[string]sourceState{}
	for _, r := range e.target() {
		id, err := strconv.ParseFloat(string(r.vals[amount].B), 64)
		if err != nil {
			t.Fatal(err)
		}
		got[string(r.vals[seq].B)] = sourceState{exists: true, msg: string(r.vals[name].B), id: uint64(id)}
	}
	failed := 0
	for i := range keys {
		h := &keys[i]
		if g := got[strconv.Itoa(i)]; g != h.last {
			if failed++; failed <= 3 {
				t.Errorf("key %d ends as %+v, the source as %+v\n%s", i, g, h.last, h)
			}
		}
	}
	if failed > 3 {
		t.Errorf("and %d more keys", failed-3)
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
		r := &schema.Row{DeviceType: h.device, ID: st.id, Message: sql.NullString{String: st.msg, Valid: true}}
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
