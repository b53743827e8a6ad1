package consumer

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// testDSNParams are the session settings of Sluice's own pools (cmd/sluice's openDB).
const testDSNParams = "?parseTime=true&loc=UTC&interpolateParams=true&time_zone=%27%2B00%3A00%27"

// servers returns the project's MariaDB (an admin connection with no default
// database) and the kfake broker, as `make test` starts them; with
// SLUICE_REQUIRE_INTEGRATION=1 or CI=true, missing servers fail the test.
func servers(t testing.TB) (*sql.DB, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	required := os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true"
	dsn, brokers := os.Getenv("SLUICE_TEST_MYSQL_DSN"), os.Getenv("SLUICE_TEST_BROKERS")
	var problem error
	if dsn == "" || brokers == "" {
		problem = errors.New("SLUICE_TEST_MYSQL_DSN and SLUICE_TEST_BROKERS are not set")
	} else if c, err := net.DialTimeout("tcp", brokers, 3*time.Second); err != nil {
		problem = fmt.Errorf("kafka broker %s unreachable: %w", brokers, err)
	} else {
		c.Close()
	}
	var db *sql.DB
	if problem == nil {
		var err error
		db, err = sql.Open("mysql", dsn+testDSNParams)
		if err == nil {
			err = db.Ping()
		}
		if err != nil {
			problem = fmt.Errorf("MySQL %s unreachable: %w", dsn, err)
		}
	}
	if problem != nil {
		if required {
			t.Fatal(problem)
		}
		t.Skip(problem)
	}
	t.Cleanup(func() { db.Close() })
	return db, brokers
}

// world is one test's slice of the shared servers: a migrated target
// database, a topic and a group of its own, and a client to produce with.
type world struct {
	t                      *testing.T
	ctx                    context.Context
	db                     *sql.DB
	brokers                string
	database, topic, group string
	kcl                    *kgo.Client
	adm                    *kadm.Client
}

func newWorld(t *testing.T, db *sql.DB, brokers, prefix string, partitions int32) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	w := &world{t: t, ctx: ctx, db: db, brokers: brokers, database: prefix + "_" + id,
		topic: strings.ReplaceAll(prefix, "_", ".") + "." + id, group: strings.ReplaceAll(prefix, "_", "-") + "-" + id}
	if err := schema.MigrateTarget(ctx, db, w.database); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + w.database) })
	var err error
	if w.kcl, err = kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(w.topic)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.kcl.Close)
	w.adm = kadm.NewClient(w.kcl)
	if _, err := w.adm.CreateTopic(ctx, partitions, -1, nil, w.topic); err != nil {
		t.Fatal(err)
	}
	return w
}

// caughtUp waits until the group has committed everything on the topic.
func (w *world) caughtUp() {
	w.t.Helper()
	ends, err := EndOffsets(w.ctx, w.adm, w.topic)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := WaitCaughtUp(w.ctx, w.adm, w.group, w.topic, ends, 20*time.Millisecond); err != nil {
		w.t.Fatal(err)
	}
}

// start runs a member in the background; stop cancels it and returns Run's
// result.
func (w *world) start(c *Consumer) (stop func() error) {
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

// testDeadLetters writes dead letters and re-drives them with a plain
// client: the producer's writer (producer.DeadLetterWriter, which consumer
// may not import) without its reference fallback, so a dead letter the
// topic refuses fails Send. The producer's tests and cmd/sluice's cover
// the writer itself.
type testDeadLetters struct{ cl *kgo.Client }

// newTestDeadLetters creates the dead-letter topic, as the producer's writer
// does, and a client to write to it.
func newTestDeadLetters(t testing.TB, brokers, dlqTopic string) *testDeadLetters {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	resp, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, -1, nil, dlqTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create dead-letter topic %s: %v", dlqTopic, err)
	}
	return &testDeadLetters{cl: cl}
}

func (d *testDeadLetters) Send(ctx context.Context, dead []*kgo.Record, acked func(*kgo.Record)) error {
	for _, res := range d.cl.ProduceSync(ctx, dead...) {
		if res.Err != nil {
			return fmt.Errorf("dead-letter record %s to %s: %w", coordinates(res.Record), res.Record.Topic, res.Err)
		}
		acked(res.Record)
	}
	return nil
}

func (d *testDeadLetters) Resend(ctx context.Context, recs []*kgo.Record) error {
	return d.cl.ProduceSync(ctx, recs...).FirstErr()
}

func testRow(i int, device string) *schema.Row {
	ts := time.Date(2025, 10, 1, 0, 0, i, 0, time.UTC)
	return &schema.Row{
		ID: uint64(i + 1), Date: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), Timestamp: ts,
		DeviceType: device, EventType: "reading",
		Message: sql.NullString{String: fmt.Sprintf("message %d", i), Valid: true},
	}
}

// TestIntegrationFailedWriteCommitsNoOffset stages a failure of the server
// in the third batch (a trigger raises "disk full" on one row: an error of
// the server, not of the row, which TestIntegrationRefusedRowsDeadLettered
// covers) and checks that the member stops with the error, that the first
// two batches are in the target with their offsets committed, and that
// nothing of the third batch is: neither rows nor offsets.
func TestIntegrationFailedWriteCommitsNoOffset(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_consumer", 1)
	ctx, database, topic, group, kcl, adm := w.ctx, w.database, w.topic, w.group, w.kcl, w.adm
	trigger := "CREATE TRIGGER " + database + ".poison BEFORE INSERT ON " + database + ".records FOR EACH ROW " +
		"BEGIN IF NEW.device_type = 'poison' THEN SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1021, MESSAGE_TEXT = 'poison row'; END IF; END"
	if _, err := db.ExecContext(ctx, trigger); err != nil {
		t.Fatal(err)
	}

	const total, poisonAt, batchSize = 250, 230, 100
	for i := range total {
		device := "sensor-1"
		if i == poisonAt {
			device = "poison"
		}
		ev := schema.Event{After: testRow(i, device), Op: schema.OpRead, Source: schema.Source{Snapshot: "true"}}
		value, _ := schema.EncodeEvent(&ev)
		key, _ := schema.EncodeKey(ev.Key())
		if err := kcl.ProduceSync(ctx, &kgo.Record{Key: key, Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database = []string{brokers}, topic, group, database
	cfg.BatchSize, cfg.Linger, cfg.DBAttempts = batchSize, 200*time.Millisecond, 3
	cfg.DeadLetters = newTestDeadLetters(t, brokers, cfg.DeadLetterTopic())
	m := NewMetrics(prometheus.NewRegistry())
	c, err := New(ctx, cfg, db, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	runErr := c.Run(ctx)
	if runErr == nil || !strings.Contains(runErr.Error(), "poison row") || !strings.Contains(runErr.Error(), "offsets not committed") {
		t.Fatalf("Run returned %v, want the trigger's error and a word that offsets were not committed", runErr)
	}
	if want := fmt.Sprintf("topic %s partitions 0 offsets %d-%d", topic, 2*batchSize, total-1); !strings.Contains(runErr.Error(), want) {
		t.Errorf("Run returned %v, want it to name the failed batch's records: %q", runErr, want)
	}

	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.At != 2*batchSize {
		t.Errorf("committed offset %d (found %v), want %d: the two good batches and nothing of the failed one", o.At, ok, 2*batchSize)
	}
	var rows, maxTS int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MAX(SECOND(timestamp) + 60*MINUTE(timestamp)), -1) FROM "+database+".records").Scan(&rows, &maxTS); err != nil {
		t.Fatal(err)
	}
	if rows != 2*batchSize || maxTS != 2*batchSize-1 {
		t.Errorf("target holds %d rows up to record %d, want %d rows up to record %d", rows, maxTS, 2*batchSize, 2*batchSize-1)
	}
	var upper int
	db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+database+".records WHERE BINARY message = BINARY UPPER(message) AND message LIKE 'MESSAGE %'").Scan(&upper)
	if upper != rows {
		t.Errorf("%d of %d target messages are upper-cased", upper, rows)
	}
	if got := testutil.ToFloat64(m.batches); got != 2 {
		t.Errorf("sluice_consumer_batches_total = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.dbErrors); got != 1 {
		t.Errorf("sluice_consumer_db_errors_total = %v, want 1 (a trigger error is not retried)", got)
	}
	if got := testutil.ToFloat64(m.dbRetries); got != 0 {
		t.Errorf("sluice_consumer_db_retries_total = %v, want 0", got)
	}
}

// TestIntegrationDeletesAndLastChangeWins applies creates, updates and
// deletes of the same keys within one batch and across batches.
func TestIntegrationDeletesAndLastChangeWins(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_consumer", 3)
	ctx, database, topic, group, kcl := w.ctx, w.database, w.topic, w.group, w.kcl
	produce := func(ev schema.Event) {
		t.Helper()
		value, _ := schema.EncodeEvent(&ev)
		key, _ := schema.EncodeKey(ev.Key())
		if err := kcl.ProduceSync(ctx, &kgo.Record{Key: key, Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	upd := func(i int, msg string) *schema.Row {
		r := testRow(i, "meter-7")
		r.Message.String = msg
		return r
	}
	produce(schema.Event{After: testRow(0, "meter-7"), Op: schema.OpCreate})
	produce(schema.Event{Before: testRow(0, "meter-7"), After: upd(0, "second"), Op: schema.OpUpdate})
	produce(schema.Event{After: testRow(1, "meter-7"), Op: schema.OpCreate})
	produce(schema.Event{Before: testRow(1, "meter-7"), Op: schema.OpDelete})
	produce(schema.Event{After: testRow(2, "meter-7"), Op: schema.OpRead})
	kcl.Produce(ctx, &kgo.Record{Key: []byte("tombstone"), Value: nil}, nil) // Debezium's tombstone: skipped
	if err := kcl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database = []string{brokers}, topic, group, database
	cfg.Linger = 100 * time.Millisecond
	cfg.DeadLetters = newTestDeadLetters(t, brokers, cfg.DeadLetterTopic())
	c, err := New(ctx, cfg, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := w.start(c)
	w.caughtUp()
	// A later batch deletes a key an earlier batch wrote.
	produce(schema.Event{Before: testRow(2, "meter-7"), Op: schema.OpDelete})
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	got := map[int]string{}
	rows, err := db.QueryContext(ctx, "SELECT SECOND(timestamp), message FROM "+database+".records")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s int
		var msg string
		rows.Scan(&s, &msg)
		got[s] = msg
	}
	rows.Close()
	if len(got) != 1 || got[0] != "SECOND" {
		t.Errorf("target rows %v, want only key 0 with its last message SECOND (key 1 deleted in-batch, key 2 deleted later)", got)
	}
	if st := c.Stats(); st.Records != 7 || st.Deleted != 1 {
		t.Errorf("stats %+v: want 7 records (tombstone included) and 1 row deleted", st)
	}
}

// TestIntegrationTrickyValuesRoundTrip writes values that need quoting
// through the hand-built upsert, under both quoting modes of the server,
// and reads them back unchanged (but for the upper-casing).
func TestIntegrationTrickyValuesRoundTrip(t *testing.T) {
	admin, brokers := servers(t)
	dsn := os.Getenv("SLUICE_TEST_MYSQL_DSN")
	messages := []string{
		`it's "quoted"`, `back\slash\`, "nul\x00byte", "ctrl-z\x1a", "new\nline\r\n", "tab\there",
		`\'; DROP TABLE records; --`, "ünïcödé ß 日本語 😀", "", "''", `\\`,
	}
	for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES"} {
		t.Run("sql_mode="+mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			params := "?parseTime=true&loc=UTC&time_zone=%27%2B00%3A00%27"
			if mode != "" {
				params += "&sql_mode=%27" + mode + "%27"
			}
			db, err := sql.Open("mysql", dsn+params)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var b [4]byte
			_, _ = rand.Read(b[:])
			id := hex.EncodeToString(b[:])
			database, topic, group := "it_quote_"+id, "it.quote."+id, "it-quote-"+id
			if err := schema.MigrateTarget(ctx, admin, database); err != nil {
				t.Fatal(err)
			}
			defer admin.Exec("DROP DATABASE IF EXISTS " + database)
			kcl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(topic))
			if err != nil {
				t.Fatal(err)
			}
			defer kcl.Close()
			adm := kadm.NewClient(kcl)
			if _, err := adm.CreateTopic(ctx, 1, -1, nil, topic); err != nil {
				t.Fatal(err)
			}
			for i, m := range messages {
				r := testRow(i, "quote-test")
				r.Message = sql.NullString{String: m, Valid: true}
				r.CreatedAt = sql.NullTime{Time: r.Timestamp.Add(123456 * time.Microsecond), Valid: true}
				ev := schema.Event{After: r, Op: schema.OpCreate, Source: schema.Source{File: "mysql-bin.000007", Pos: uint64(1000 + i)}}
				value, _ := schema.EncodeEvent(&ev)
				key, _ := schema.EncodeKey(ev.Key())
				if err := kcl.ProduceSync(ctx, &kgo.Record{Key: key, Value: value}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			nullRow := testRow(len(messages), "quote-test") // NULL message and timestamps
			nullRow.Message = sql.NullString{}
			ev := schema.Event{After: nullRow, Op: schema.OpRead}
			value, _ := schema.EncodeEvent(&ev)
			if err := kcl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: value}).FirstErr(); err != nil {
				t.Fatal(err)
			}

			cfg := DefaultConfig()
			cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database, cfg.Linger = []string{brokers}, topic, group, database, 100*time.Millisecond
			cfg.DeadLetters = newTestDeadLetters(t, brokers, cfg.DeadLetterTopic())
			c, err := New(ctx, cfg, db, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(rctx) }()
			ends, _ := EndOffsets(ctx, adm, topic)
			if err := WaitCaughtUp(ctx, adm, group, topic, ends, 50*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			rows, err := admin.QueryContext(ctx, "SELECT SECOND(timestamp), message, created_at, source_version FROM "+database+".records ORDER BY timestamp")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var sec int
				var msg sql.NullString
				var created sql.NullTime
				var version sql.NullInt64
				if err := rows.Scan(&sec, &msg, &created, &version); err != nil {
					t.Fatal(err)
				}
				n++
				if sec == len(messages) {
					if msg.Valid || created.Valid || version.Valid {
						t.Errorf("NULL row came back as %v %v %v", msg, created, version)
					}
					continue
				}
				want := strings.ToUpper(messages[sec])
				if !msg.Valid || msg.String != want {
					t.Errorf("message %d: got %q, want %q", sec, msg.String, want)
				}
				if wantTS := testRow(sec, "").Timestamp.Add(123456 * time.Microsecond).Truncate(time.Second); !created.Valid || !created.Time.Equal(wantTS) {
					t.Errorf("created_at %d: got %v, want %v (TIMESTAMP keeps whole seconds)", sec, created.Time, wantTS)
				}
				if want := int64(7<<32 | (1000 + sec)); version.Int64 != want {
					t.Errorf("source_version %d: got %d, want %d", sec, version.Int64, want)
				}
			}
			if n != len(messages)+1 {
				t.Errorf("read back %d rows, want %d", n, len(messages)+1)
			}
		})
	}
}

// TestIntegrationPoisonRecordsGoToDLQ mixes records that cannot be applied
// into a batch of good ones: every bad one lands in the dead-letter topic
// with its key, value and headers naming the reason and its coordinates;
// every good one lands in the target; the group commits past all of them.
func TestIntegrationPoisonRecordsGoToDLQ(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_dlq", 1)
	ctx, database, topic, group, kcl := w.ctx, w.database, w.topic, w.group, w.kcl
	good := func(i int) []byte {
		v, _ := schema.EncodeEvent(&schema.Event{After: testRow(i, "sensor-ok"), Op: schema.OpCreate})
		return v
	}
	bad := func(mut func(r *schema.Row)) []byte {
		r := testRow(99, "sensor-bad")
		mut(r)
		v, _ := schema.EncodeEvent(&schema.Event{After: r, Op: schema.OpCreate})
		return v
	}
	long := strings.Repeat("é", 256)
	poison := map[int64]struct{ reason, says string }{}
	values := [][]byte{good(0), []byte(`{"op":"c","after":`), good(1),
		bad(func(r *schema.Row) { r.DeviceType = "" }), good(2),
		bad(func(r *schema.Row) { r.EventType = long }), good(3),
		bad(func(r *schema.Row) { r.Timestamp = time.Date(999, 1, 1, 0, 0, 0, 0, time.UTC) }),
		[]byte(`{"op":"c","after":{"id":1,"device_type":"x","event_type":"y"}}`), good(4)}
	poison[1] = struct{ reason, says string }{ReasonDecode, "malformed change event"}
	poison[3] = struct{ reason, says string }{ReasonValidation, "device_type is empty"}
	poison[5] = struct{ reason, says string }{ReasonValidation, "event_type is 256 characters, over the column's 255"}
	poison[7] = struct{ reason, says string }{ReasonValidation, "outside years 1000 to 9999"}
	poison[8] = struct{ reason, says string }{ReasonDecode, "date and timestamp are required"}
	for i, v := range values {
		rec := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: v, Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}}
		if err := kcl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database, cfg.Linger = []string{brokers}, topic, group, database, 100*time.Millisecond
	cfg.DeadLetters = newTestDeadLetters(t, brokers, cfg.DeadLetterTopic())
	m := NewMetrics(prometheus.NewRegistry())
	c, err := New(ctx, cfg, db, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := w.start(c)
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v (a poison record must not stop the member)", err)
	}

	var n int
	db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+database+".records WHERE device_type = 'sensor-ok'").Scan(&n)
	if n != 5 {
		t.Errorf("target holds %d good rows, want 5", n)
	}
	db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+database+".records").Scan(&n)
	if n != 5 {
		t.Errorf("target holds %d rows, want only the 5 good ones", n)
	}
	if st := c.Stats(); st.Dead != int64(len(poison)) {
		t.Errorf("stats count %d dead letters, want %d", st.Dead, len(poison))
	}
	if got := testutil.ToFloat64(m.dlq.WithLabelValues(ReasonValidation)); got != 3 {
		t.Errorf("sluice_consumer_dlq_records_total{reason=validation} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.dlq.WithLabelValues(ReasonDecode)); got != 2 {
		t.Errorf("sluice_consumer_dlq_records_total{reason=decode} = %v, want 2", got)
	}

	dl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(cfg.DeadLetterTopic()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	seen := 0
	for seen < len(poison) {
		fs := dl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d dead letters", seen, len(poison))
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			off, _ := Header(r, schema.DLQHeaderOffset)
			o, _ := strconv.ParseInt(off, 10, 64)
			want, ok := poison[o]
			if !ok {
				t.Errorf("dead letter for offset %d, which was a good record", o)
				return
			}
			reason, _ := Header(r, schema.DLQHeaderReason)
			msg, _ := Header(r, schema.DLQHeaderError)
			tp, _ := Header(r, schema.DLQHeaderTopic)
			part, _ := Header(r, schema.DLQHeaderPartition)
			origin, _ := Header(r, "origin")
			if reason != want.reason || !strings.Contains(msg, want.says) || tp != topic || part != "0" || origin != "test" {
				t.Errorf("dead letter @%d: reason %q error %q topic %q partition %q origin %q; want %q, %q, %q, 0, test",
					o, reason, msg, tp, part, origin, want.reason, want.says, topic)
			}
			if !bytes.Equal(r.Value, values[o]) || string(r.Key) != fmt.Sprintf("key-%d", o) {
				t.Errorf("dead letter @%d does not carry the original key and value", o)
			}
			if !strings.Contains(msg, fmt.Sprintf("%s/0@%d", topic, o)) {
				t.Errorf("dead letter error %q does not name its coordinates", msg)
			}
		})
	}

	// A replay over the poison records (the group, empty now, reset to the
	// start, as sluice replay --to-earliest commits): a new member
	// dead-letters each again, once, and goes on to the end.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
	resp, err := w.adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("reset group %s: %v", group, err)
	}
	c2, err := New(ctx, cfg, db, NewMetrics(prometheus.NewRegistry()), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.runUntilCaughtUp(c2)
	times := map[int64]int{}
	for _, r := range w.deadLetters(cfg.DeadLetterTopic()) {
		off, _ := Header(r, schema.DLQHeaderOffset)
		o, _ := strconv.ParseInt(off, 10, 64)
		times[o]++
	}
	for o := range poison {
		if times[o] != 2 {
			t.Errorf("after the replay, record @%d has %d dead letters, want 2 (all: %v)", o, times[o], times)
		}
	}
	if len(times) != len(poison) {
		t.Errorf("dead letters for offsets %v, want only the poison ones", times)
	}
	db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+database+".records").Scan(&n)
	if n != 5 {
		t.Errorf("after the replay the target holds %d rows, want the 5 good ones", n)
	}
}

// TestIntegrationVersionedUpsert: a change applies only when it is not older
// than the row's source_version and changes something; an older change
// arriving late, or the same content again, writes nothing.
func TestIntegrationVersionedUpsert(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_ver", 1)
	ctx, database, topic, group, kcl, adm := w.ctx, w.database, w.topic, w.group, w.kcl, w.adm
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database, cfg.Linger = []string{brokers}, topic, group, database, 50*time.Millisecond
	cfg.DeadLetters = newTestDeadLetters(t, brokers, cfg.DeadLetterTopic())
	c, err := New(ctx, cfg, db, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := w.start(c)

	type state struct {
		msg     string
		version sql.NullInt64
		loaded  time.Time
	}
	read := func() state {
		var s state
		if err := db.QueryRowContext(ctx, "SELECT message, source_version, loaded_at FROM "+database+".records").Scan(&s.msg, &s.version, &s.loaded); err != nil {
			t.Fatal(err)
		}
		return s
	}
	apply := func(msg string, pos uint64) state { // one change, in a batch of its own
		t.Helper()
		r := testRow(0, "meter-9")
		r.Message.String = msg
		src := schema.Source{}
		if pos > 0 {
			src.File, src.Pos = "mysql-bin.000001", pos
		}
		v, _ := schema.EncodeEvent(&schema.Event{After: r, Op: schema.OpUpdate, Source: src})
		if err := kcl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		ends, _ := EndOffsets(ctx, adm, topic)
		if err := WaitCaughtUp(ctx, adm, group, topic, ends, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		return read()
	}
	version := func(pos int64) sql.NullInt64 { return sql.NullInt64{Int64: 1<<32 | pos, Valid: true} }

	first := apply("a", 10)
	if first.msg != "A" || first.version != version(10) {
		t.Fatalf("first change: %+v", first)
	}
	if got := apply("b", 5); got.msg != "A" || got.version != version(10) || !got.loaded.Equal(first.loaded) {
		t.Errorf("an older change overwrote a newer one: %+v", got)
	}
	if got := apply("a", 12); got.msg != "A" || got.version != version(10) || !got.loaded.Equal(first.loaded) {
		t.Errorf("the same content at a newer version was rewritten: %+v (want nothing written)", got)
	}
	if got := apply("c", 15); got.msg != "C" || got.version != version(15) || !got.loaded.After(first.loaded) {
		t.Errorf("a newer change was not applied: %+v", got)
	}
	if got := apply("d", 0); got.msg != "D" || got.version.Valid {
		t.Errorf("a change without a version (a Debezium topic without positions) must apply: %+v", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Inserted != 1 || st.Upserted != 3 || st.Unchanged != 2 || st.Merged != 4 {
		t.Errorf("stats %+v: want 1 inserted, 3 upserted (1 new + 2 changed), 2 unchanged, 4 merged", st)
	}
}
