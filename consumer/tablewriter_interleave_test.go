package consumer

import (
	"flag"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

var tableInterleavings = flag.Int("table-interleavings", 3000, "keys (histories) in TestIntegrationTableWriterInterleavings")

// TestIntegrationTableWriterInterleavings is TestIntegrationInterleavings'
// property for the generic writer: the target ends as the source's last
// state of every key, whatever order the pipeline delivers the key's
// changes in (the tail's in binlog order, backfill reads anywhere among
// them, batches of any size, redeliveries). The histories are
// newHistory's, carried onto the mixed table: a key is (site, day, seq),
// the state is the name and the amount.
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
