package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// newTableEnv is gwEnv's table, with the broker, within two minutes.
func newTableEnv(t *testing.T) (*gwEnv, string) {
	t.Helper()
	e := newGWEnv(t)
	_, brokers := servers(t)
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	return e, brokers
}

// tableMember is a table-driven member (Config.Tables) on gwEnv's table,
// with a topic of its own and a dead-letter topic.
type tableMember struct {
	e       *gwEnv
	brokers string
	group   string
	cl      *kgo.Client
	adm     *kadm.Client
	wire    *Wire // the Wire that dials the members' pool, if any
}

func newTableMember(t *testing.T, e *gwEnv, brokers string, partitions int32) *tableMember {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(e.table.Topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	m := &tableMember{e: e, brokers: brokers, group: "it-" + e.dst, cl: cl, adm: kadm.NewClient(cl)}
	resp, err := m.adm.CreateTopic(e.ctx, partitions, -1, nil, e.table.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", e.table.Topic, err)
	}
	return m
}

// member builds a member of the group writing through db.
func (m *tableMember) member(db *sql.DB, metrics *Metrics, attempts, batch int) *Consumer {
	t := m.e.t
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Group, cfg.Tables, cfg.Linger = []string{m.brokers}, m.group, []*schema.Table{m.e.table}, 50*time.Millisecond
	cfg.DBAttempts, cfg.BatchSize, cfg.Wire = attempts, batch, m.wire
	cfg.DeadLetters = newTestDeadLetters(t, m.brokers, cfg.DeadLetterTopic())
	c, err := New(m.e.ctx, cfg, db, metrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// produce writes a create of each source image, at binlog position 100+i.
func (m *tableMember) produce(imgs [][]schema.Value) {
	t := m.e.t
	t.Helper()
	recs := make([]*kgo.Record, 0, len(imgs))
	for i, img := range imgs {
		ch := &schema.Change{Op: schema.OpCreate, After: img, Source: schema.Source{DB: m.e.table.Source.DB, Table: m.e.table.Source.Table, File: "bin.000001", Pos: uint64(100 + i)}}
		value, err := schema.AppendChange(nil, m.e.table, ch)
		if err != nil {
			t.Fatal(err)
		}
		key, err := schema.AppendChangeKey(nil, m.e.table, ch)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: key, Value: value})
	}
	if err := m.cl.ProduceSync(m.e.ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// deadLetters reads the whole dead-letter topic.
func (m *tableMember) deadLetters() []*kgo.Record {
	t := m.e.t
	t.Helper()
	topic := m.group + ".dlq"
	ends, err := EndOffsets(m.e.ctx, m.adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, end := range ends {
		want += end
	}
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(m.brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for int64(len(out)) < want {
		ctx, cancel := context.WithTimeout(m.e.ctx, 10*time.Second)
		fs := cl.PollFetches(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("%d of %d dead letters read from %s", len(out), want, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// run is a member running in the background.
type run struct {
	cancel context.CancelFunc
	exited chan struct{} // closed when Run has returned, with err set
	err    error
}

// startMember runs c until stop.
func startMember(ctx context.Context, c *Consumer) *run {
	ctx, cancel := context.WithCancel(ctx)
	r := &run{cancel: cancel, exited: make(chan struct{})}
	go func() { r.err = c.Run(ctx); close(r.exited) }()
	return r
}

// stop cancels the member and returns Run's result.
func (r *run) stop() error { r.cancel(); <-r.exited; return r.err }

// caughtUp waits until the group has committed every offset of the topic,
// failing at once if the member stops.
func (m *tableMember) caughtUp(r *run) {
	t := m.e.t
	t.Helper()
	ends, err := EndOffsets(m.e.ctx, m.adm, m.e.table.Topic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(m.e.ctx)
	defer cancel()
	go func() {
		select {
		case <-r.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := WaitCaughtUp(ctx, m.adm, m.group, m.e.table.Topic, ends, 20*time.Millisecond); err != nil {
		select {
		case <-r.exited:
			t.Fatalf("the member stopped before the group caught up: %v", r.err)
		default:
		}
		t.Fatal(err)
	}
}

// gwSeqs lists the target's seq values, in order.
func (e *gwEnv) seqs() []int {
	e.t.Helper()
	rows, err := e.db.QueryContext(e.ctx, "SELECT seq FROM "+e.dst+".mixed ORDER BY seq")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var s int
		if err := rows.Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestIntegrationTableRefusedRowsDeadLettered runs a table-driven member on
// a configured table whose target refuses some rows: its label column is
// narrower than the source's name (data too long, in strict mode) and a
// CHECK constraint refuses a negative seq. Among them, names longer than
// the table's rule allows are refused before the database. Each batch's
// other rows land, every offset is committed, and each refused record is
// in the dead-letter topic once, with its reason, naming the table, its
// key, the column or the constraint, and its topic/partition@offset.
func TestIntegrationTableRefusedRowsDeadLettered(t *testing.T) {
	refusedRowsDeadLettered(t, false)
}

// TestIntegrationTableBulkRefusedRowsDeadLettered is the same through a
// target pool dialed by a Wire: new rows go as MariaDB bulk inserts, a
// batch holding a refused row falls back to the upsert, which fails, and
// the isolation finds the row; the rows around it land as bulk inserts,
// which the refusals do not turn off.
func TestIntegrationTableBulkRefusedRowsDeadLettered(t *testing.T) {
	refusedRowsDeadLettered(t, true)
}

func refusedRowsDeadLettered(t *testing.T, bulk bool) {
	e, brokers := newTableEnv(t)
	var mode string
	if err := e.db.QueryRowContext(e.ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mode, "STRICT_TRANS_TABLES") && !strings.Contains(mode, "STRICT_ALL_TABLES") {
		t.Fatalf("the server's sql_mode %q is not strict: it would truncate the long labels instead of refusing them", mode)
	}
	e.exec("ALTER TABLE " + e.dst + ".mixed MODIFY label VARCHAR(4) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL")
	e.exec("ALTER TABLE " + e.dst + ".mixed ADD CONSTRAINT seq_not_negative CHECK (seq >= 0)")

	const total = 600
	type refusal struct{ reason, why string }
	refused := map[int]refusal{} // by seq
	var want []int
	var values []string
	for i := range total {
		seq, name := i, "ok"
		switch {
		case i%97 == 5:
			name, refused[seq] = "far-too-long", refusal{ReasonValidation, "rule max_length"}
		case i%50 == 7:
			name, refused[seq] = "longer", refusal{ReasonDatabase, "Error 1406"}
		case i%131 == 11:
			seq = -i
			refused[seq] = refusal{ReasonDatabase, "Error 4025"}
		default:
			want = append(want, seq)
		}
		values = append(values, fmt.Sprintf("(%d, 's%d', '2024-01-15', %d, '%s')", i+1, i%3, seq, name))
	}
	e.exec("INSERT INTO " + e.src + ".mixed (id, site, day, seq, name) VALUES " + strings.Join(values, ","))
	imgs := make([][]schema.Value, total)
	for i, r := range e.read(e.src+".mixed", true, "TRUE") {
		imgs[i] = r.vals
	}
	slices.Sort(want)

	tm := newTableMember(t, e, brokers, 2)
	tm.produce(imgs)
	m := NewMetrics(prometheus.NewRegistry())
	db, wire := e.db, (*Wire)(nil)
	if bulk {
		db, wire = wiredDB(t)
	}
	tm.wire = wire
	c := tm.member(db, m, 5, 250)
	r := startMember(e.ctx, c)
	tm.caughtUp(r) // every offset committed: the refused rows block nothing
	if err := r.stop(); err != nil {
		t.Fatalf("the member stopped on a refused row: %v", err)
	}
	if bulk {
		kept, back := testutil.ToFloat64(m.bulkInserts), testutil.ToFloat64(m.loadFallbacks)
		if kept == 0 || back == 0 || c.path.tables[0].w.bulk.wire == nil {
			t.Errorf("bulk inserts: %v kept, %v rolled back (still on: %v); want both, and on", kept, back, c.path.tables[0].w.bulk.wire != nil)
		}
	}

	if got := e.seqs(); !slices.Equal(got, want) {
		t.Errorf("target holds %d rows, want the %d not refused:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	var nDB, nRule int
	for _, r := range refused {
		if r.reason == ReasonDatabase {
			nDB++
		} else {
			nRule++
		}
	}
	dl := tm.deadLetters()
	if len(dl) != len(refused) {
		t.Errorf("%d dead letters, want %d (%d refused by the database, %d by the rule)", len(dl), len(refused), nDB, nRule)
	}
	seen := map[int]bool{}
	for _, r := range dl {
		var ch schema.Change
		if _, err := schema.ParseChange(nil, e.table, r.Value, &ch); err != nil {
			t.Fatalf("dead letter %s: %v", r.Value, err)
		}
		site, seqText := string(ch.After[0].B), string(ch.After[2].B)
		seq, err := strconv.Atoi(seqText)
		if err != nil {
			t.Fatal(err)
		}
		if seen[seq] {
			t.Errorf("seq %d dead-lettered twice", seq)
		}
		seen[seq] = true
		wantR, ok := refused[seq]
		if !ok {
			t.Errorf("dead letter of seq %d, which the target takes", seq)
			continue
		}
		reason, _ := Header(r, schema.DLQHeaderReason)
		msg, _ := Header(r, schema.DLQHeaderError)
		topic, _ := Header(r, schema.DLQHeaderTopic)
		part, _ := Header(r, schema.DLQHeaderPartition)
		off, _ := Header(r, schema.DLQHeaderOffset)
		if reason != wantR.reason || topic != e.table.Topic || part == "" || off == "" {
			t.Errorf("seq %d: dead letter reason %q topic %q partition %q offset %q, want reason %s topic %s", seq, reason, topic, part, off, wantR.reason, e.table.Topic)
		}
		musts := []string{"record " + e.table.Topic + "/" + part + "@" + off, wantR.why}
		switch wantR.why {
		case "Error 1406":
			musts = append(musts, "label")
		case "Error 4025":
			musts = append(musts, "seq_not_negative")
		case "rule max_length":
			musts = append(musts, "column name")
		}
		if reason == ReasonDatabase {
			// The key as the target has it: the site upper-cased by its transform.
			musts = append(musts, fmt.Sprintf("target %s.mixed refused key (%q, %q, %q)", e.dst, strings.ToUpper(site), "2024-01-15", seqText))
		}
		for _, s := range musts {
			if !strings.Contains(msg, s) {
				t.Errorf("seq %d: dead letter's error %q lacks %q", seq, msg, s)
			}
		}
	}
	if got := testutil.ToFloat64(m.tableDLQ.WithLabelValues(e.dst+".mixed", ReasonDatabase)); got != float64(nDB) {
		t.Errorf("sluice_consumer_table_dlq_records_total{reason=database} = %v, want %d", got, nDB)
	}
	if got := testutil.ToFloat64(m.tableDLQ.WithLabelValues(e.dst+".mixed", ReasonValidation)); got != float64(nRule) {
		t.Errorf("sluice_consumer_table_dlq_records_total{reason=validation} = %v, want %d", got, nRule)
	}
	if got := testutil.ToFloat64(m.dlq.WithLabelValues(ReasonDatabase)); got != float64(nDB) {
		t.Errorf("sluice_consumer_dlq_records_total{reason=database} = %v, want %d", got, nDB)
	}
	if testutil.ToFloat64(m.isolations) == 0 {
		t.Error("sluice_consumer_db_isolations_total is 0")
	}
	if st := c.Stats(); st.Dead != int64(len(refused)) {
		t.Errorf("stats count %d dead letters, want %d", st.Dead, len(refused))
	}
}

// TestIntegrationTableTransientRetried holds a lock on the configured
// table's target from another connection, so that the member's upsert
// waits past its session's innodb_lock_wait_timeout (error 1205, a
// transient error); the lock is released once the member has retried.
// The retried write lands every row, nothing is dead-lettered or isolated,
// the member does not stop, and every offset is committed.
func TestIntegrationTableTransientRetried(t *testing.T) {
	e, brokers := newTableEnv(t)
	pool, err := sql.Open("mysql", os.Getenv("SLUICE_TEST_MYSQL_DSN")+testDSNParams+"&innodb_lock_wait_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })

	const total = 40
	var values []string
	want := make([]int, total)
	for i := range total {
		values = append(values, fmt.Sprintf("(%d, 's%d', '2024-01-15', %d, 'ok')", i+1, i%3, i))
		want[i] = i
	}
	e.exec("INSERT INTO " + e.src + ".mixed (id, site, day, seq, name) VALUES " + strings.Join(values, ","))
	var imgs [][]schema.Value
	for _, r := range e.read(e.src+".mixed", true, "TRUE") {
		imgs = append(imgs, r.vals)
	}

	// The empty target's supremum, locked: every insert into it waits.
	lock, err := e.db.BeginTx(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback() //nolint:errcheck // released below; a no-op then
	rows, err := lock.QueryContext(e.ctx, "SELECT seq FROM "+e.dst+".mixed FOR UPDATE")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()

	tm := newTableMember(t, e, brokers, 1)
	tm.produce(imgs)
	m := NewMetrics(prometheus.NewRegistry())
	c := tm.member(pool, m, 20, 10000)
	r := startMember(e.ctx, c)
	for testutil.ToFloat64(m.dbRetries) == 0 {
		select {
		case <-r.exited:
			t.Fatalf("the member stopped instead of retrying its write behind the lock: %v", r.err)
		case <-e.ctx.Done():
			t.Fatalf("the member never retried its write behind the lock: %v", r.stop())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	tm.caughtUp(r)
	if err := r.stop(); err != nil {
		t.Fatalf("the member stopped on a lock wait timeout: %v", err)
	}
	if got := e.seqs(); !slices.Equal(got, want) {
		t.Errorf("target rows by seq: %v, want %v", got, want)
	}
	if dl := tm.deadLetters(); len(dl) != 0 {
		h, _ := Header(dl[0], schema.DLQHeaderError)
		t.Errorf("%d dead letters, the first %q; want none", len(dl), h)
	}
	if got := testutil.ToFloat64(m.isolations); got != 0 {
		t.Errorf("sluice_consumer_db_isolations_total = %v after a transient error, want 0", got)
	}
	if got := testutil.ToFloat64(m.dbErrors); got < 1 {
		t.Errorf("sluice_consumer_db_errors_total = %v, want at least the lock wait timeout", got)
	}
}
