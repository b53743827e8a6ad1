package consumer

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// sourceRows inserts n source rows of gwEnv's table, seq 0 to n-1, and
// returns their images as the backfill reads them, in seq order.
func (e *gwEnv) sourceRows(n int) [][]schema.Value {
	e.t.Helper()
	var values []string
	for i := range n {
		values = append(values, fmt.Sprintf("(%d, 's%d', '2024-01-15', %d, 'ok')", i+1, i%3, i))
	}
	e.exec("INSERT INTO " + e.src + ".mixed (id, site, day, seq, name) VALUES " + strings.Join(values, ","))
	rows := e.read(e.src+".mixed", true, "TRUE")
	slices.SortFunc(rows, func(a, b gwRow) int {
		x, _ := strconv.Atoi(string(a.vals[slicesIndex(e.table, "seq")].B))
		y, _ := strconv.Atoi(string(b.vals[slicesIndex(e.table, "seq")].B))
		return x - y
	})
	imgs := make([][]schema.Value, len(rows))
	for i, r := range rows {
		imgs[i] = r.vals
	}
	return imgs
}

// resetGroup commits offset at for partition 0 of the table's topic, as
// sluice replay does for a group with no live member.
func (m *tableMember) resetGroup(at int64) {
	t := m.e.t
	t.Helper()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: m.e.table.Topic, Partition: 0, At: at, LeaderEpoch: -1})
	resp, err := m.adm.CommitOffsets(m.e.ctx, m.group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("reset group %s: %v", m.group, err)
	}
}

// committed is the group's committed offset of partition 0.
func (m *tableMember) committed() int64 {
	t := m.e.t
	t.Helper()
	offs, err := m.adm.FetchOffsets(m.e.ctx, m.group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(m.e.table.Topic, 0)
	if !ok {
		return -1
	}
	return o.At
}

// TestIntegrationTableFailedWriteCommitsNoOffset stages a failure of the
// server in the third batch (a trigger raises "disk full" on one row: an
// error of the server, not of the row, which
// TestIntegrationTableRefusedRowsDeadLettered covers) and checks that the
// member stops with the error, that the first two batches are in the
// target with their offsets committed, and that nothing of the third batch
// is: neither rows nor offsets. Then the group is set back one batch (a
// crash between a DB commit and its offset commit delivers a batch again,
// as does a replay) and a new member runs: the batch delivered again
// applies the same (every row unchanged, to the byte and to its loaded_at),
// the failed batch lands, and the counts say so.
func TestIntegrationTableFailedWriteCommitsNoOffset(t *testing.T) {
	e, brokers := newTableEnv(t)
	e.exec("CREATE TRIGGER " + e.dst + ".poison BEFORE INSERT ON " + e.dst + ".mixed FOR EACH ROW " +
		"BEGIN IF NEW.seq = 230 THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1021, MESSAGE_TEXT = 'poison row'; END IF; END")
	const total, batchSize = 250, 100
	tm := newTableMember(t, e, brokers, 1)
	tm.produce(e.sourceRows(total))

	m := NewMetrics(prometheus.NewRegistry())
	c := tm.member(e.db, m, 3, batchSize)
	runErr := c.Run(e.ctx)
	if runErr == nil || !strings.Contains(runErr.Error(), "poison row") || !strings.Contains(runErr.Error(), "offsets not committed") {
		t.Fatalf("Run returned %v, want the trigger's error and a word that offsets were not committed", runErr)
	}
	if want := fmt.Sprintf("topic %s partitions 0 offsets %d-%d", e.table.Topic, 2*batchSize, total-1); !strings.Contains(runErr.Error(), want) {
		t.Errorf("Run returned %v, want it to name the failed batch's records: %q", runErr, want)
	}
	if got := tm.committed(); got != 2*batchSize {
		t.Errorf("committed offset %d, want %d: the two good batches and nothing of the failed one", got, 2*batchSize)
	}
	want := make([]int, 2*batchSize)
	for i := range want {
		want[i] = i
	}
	if got := e.seqs(); !slices.Equal(got, want) {
		t.Errorf("target holds %d rows (%v…), want seq 0 to %d", len(got), got[:min(len(got), 5)], 2*batchSize-1)
	}
	if got := testutil.ToFloat64(m.batches); got != 2 {
		t.Errorf("sluice_consumer_batches_total = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.dbErrors); got != 1 {
		t.Errorf("sluice_consumer_db_errors_total = %v, want 1 (a trigger error is not retried)", got)
	}
	if got, iso := testutil.ToFloat64(m.dbRetries), testutil.ToFloat64(m.isolations); got != 0 || iso != 0 {
		t.Errorf("sluice_consumer_db_retries_total = %v, db_isolations_total = %v; want 0 and 0 (a server's error, not a row's)", got, iso)
	}
	if dl := tm.deadLetters(); len(dl) != 0 {
		t.Errorf("%d dead letters, want none: the server failed, not a row", len(dl))
	}

	// Delivered again: the second batch (a crash after its DB commit),
	// then the third, once the server takes it.
	before := e.target()
	e.exec("DROP TRIGGER " + e.dst + ".poison")
	tm.resetGroup(batchSize)
	c2 := tm.member(e.db, NewMetrics(prometheus.NewRegistry()), 3, batchSize)
	r := startMember(e.ctx, c2)
	tm.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	after := e.target()
	if len(after) != total {
		t.Fatalf("target holds %d rows after the redelivery, want %d", len(after), total)
	}
	seq := slicesIndex(e.table, "seq")
	bySeq := map[string]gwRow{}
	for _, a := range after {
		bySeq[string(a.vals[seq].B)] = a
	}
	for _, b := range before {
		s := string(b.vals[seq].B)
		a := bySeq[s]
		e.sameRow("seq "+s+" delivered again", a.vals, b.vals)
		if a.version != b.version || a.loadedAt != b.loadedAt {
			t.Errorf("seq %s delivered again: version %v loaded_at %s, was %v and %s: a batch delivered again must write nothing new",
				s, a.version, a.loadedAt, b.version, b.loadedAt)
		}
	}
	st := c2.Stats()
	if st.Records != total-batchSize || st.Inserted != total-2*batchSize || st.Upserted != st.Inserted ||
		st.Unchanged != batchSize || st.Merged != batchSize || st.Dead != 0 {
		t.Errorf("stats after the redelivery %+v, want %d records, %d inserted (and upserted), %d unchanged (and merged), no dead letters",
			st, total-batchSize, total-2*batchSize, batchSize)
	}
}

// TestIntegrationTableDecodeDeadLettered: records of a table's topic that
// do not decode as its change events go to the dead-letter topic with
// reason decode, their own key, value and headers, and an error naming
// their coordinates, once each; the records around them land, the member
// does not stop, and every offset is committed. A replay over them (the
// group set back to the start, as sluice replay --to-earliest commits)
// dead-letters each again, once, and leaves the target as it was.
func TestIntegrationTableDecodeDeadLettered(t *testing.T) {
	e, brokers := newTableEnv(t)
	tm := newTableMember(t, e, brokers, 1)
	imgs := e.sourceRows(5)
	var values [][]byte
	poison := map[int64]bool{}
	for i, img := range imgs {
		ch := &schema.Change{Op: schema.OpCreate, After: img, Source: schema.Source{DB: e.table.Source.DB, Table: e.table.Source.Table, File: "bin.000001", Pos: uint64(100 + i)}}
		v, err := schema.AppendChange(nil, e.table, ch)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
		if i < 2 {
			poison[int64(len(values))] = true
			values = append(values, [][]byte{[]byte(`{"op":"c","after":`), []byte("not a change event")}[i])
		}
	}
	var recs []*kgo.Record
	for i, v := range values {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: v, Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}})
	}
	if err := tm.cl.ProduceSync(e.ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	m := NewMetrics(prometheus.NewRegistry())
	c := tm.member(e.db, m, 3, 100)
	r := startMember(e.ctx, c)
	tm.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v (a record that does not decode must not stop the member)", err)
	}
	if got := e.seqs(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("target seqs %v, want the 5 good records' 0 to 4", got)
	}
	if st := c.Stats(); st.Dead != int64(len(poison)) || st.Inserted != 5 {
		t.Errorf("stats %+v, want %d dead letters and 5 inserted", st, len(poison))
	}
	if got := testutil.ToFloat64(m.dlq.WithLabelValues(ReasonDecode)); got != float64(len(poison)) {
		t.Errorf("sluice_consumer_dlq_records_total{reason=decode} = %v, want %d", got, len(poison))
	}
	if got := testutil.ToFloat64(m.tableDLQ.WithLabelValues(e.table.Target.String(), ReasonDecode)); got != float64(len(poison)) {
		t.Errorf("sluice_consumer_table_dlq_records_total{reason=decode} = %v, want %d", got, len(poison))
	}
	check := func(dl []*kgo.Record, times int) {
		t.Helper()
		seen := map[int64]int{}
		for _, d := range dl {
			off, _ := Header(d, schema.DLQHeaderOffset)
			o, _ := strconv.ParseInt(off, 10, 64)
			seen[o]++
			reason, _ := Header(d, schema.DLQHeaderReason)
			msg, _ := Header(d, schema.DLQHeaderError)
			tp, _ := Header(d, schema.DLQHeaderTopic)
			origin, _ := Header(d, "origin")
			if !poison[o] || reason != ReasonDecode || tp != e.table.Topic || origin != "test" ||
				!strings.Contains(msg, fmt.Sprintf("%s/0@%d", e.table.Topic, o)) {
				t.Errorf("dead letter @%d: reason %q error %q topic %q origin %q; want a poison record's, reason decode, naming its coordinates",
					o, reason, msg, tp, origin)
			}
			if !bytes.Equal(d.Value, values[o]) || string(d.Key) != fmt.Sprintf("key-%d", o) {
				t.Errorf("dead letter @%d does not carry the original key and value", o)
			}
		}
		for o := range poison {
			if seen[o] != times {
				t.Errorf("record @%d has %d dead letters, want %d (all: %v)", o, seen[o], times, seen)
			}
		}
	}
	check(tm.deadLetters(), 1)

	before := e.target()
	tm.resetGroup(0)
	c2 := tm.member(e.db, NewMetrics(prometheus.NewRegistry()), 3, 100)
	r = startMember(e.ctx, c2)
	tm.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatalf("Run after the replay: %v", err)
	}
	check(tm.deadLetters(), 2)
	after := e.target()
	if len(after) != len(before) {
		t.Fatalf("after the replay the target holds %d rows, want %d", len(after), len(before))
	}
	for i := range before {
		e.sameRow(fmt.Sprintf("row %d after the replay", i), after[i].vals, before[i].vals)
	}
}
