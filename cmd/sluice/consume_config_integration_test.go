package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
)

// tablesEnv is a test's two configured tables of different shapes: the
// example's personal-data table (hash, mask, rename, drop) and a table of
// mixed types keyed on three columns, their targets made by
// 'sluice migrate --config'.
type tablesEnv struct {
	*itEnv
	path       string
	cust, read *schema.Table
	hashKey    string
	pos        uint64 // the binlog position of the next change
}

func newTablesEnv(t *testing.T) *tablesEnv {
	t.Helper()
	e := &tablesEnv{itEnv: newITEnv(t), hashKey: "k3y"}
	for _, stmt := range []string{
		"CREATE DATABASE " + e.src,
		"CREATE DATABASE " + e.dst,
		"CREATE TABLE " + e.src + `.customers (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255),
			phone VARCHAR(32), ssn CHAR(11), full_name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			signed_up DATETIME NOT NULL, seen TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))`,
		"CREATE TABLE " + e.src + `.readings (site CHAR(4) NOT NULL, probe SMALLINT UNSIGNED NOT NULL, at DATETIME(6) NOT NULL,
			value DECIMAL(65,30), note TEXT, flags SET('a','b'), raw VARBINARY(16), n BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
			PRIMARY KEY (n), UNIQUE KEY site_probe_at (site, probe, at))`,
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	text := fmt.Sprintf(`kafka:
  topic_prefix: %s
tables:
  - source: %[2]s.customers
    target: %[3]s.customers
    window: signed_up
    columns:
      exclude: [ssn]
      rename: {full_name: name}
    transforms:
      email: [trim, lower, {hash: {secret: PII_HASH_KEY}}]
      phone: [{mask: {keep: 4}}]
    rules:
      email: {required: true}
      signed_up: {min: "2000-01-01", max: "2099-12-31 23:59:59"}
  - source: %[2]s.readings
    target: %[3]s.readings
    id: "n"
    window: at
    key: [site, probe, at]
`, e.topic, e.src, e.dst)
	e.path = filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(e.path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.extraEnv = []string{"PII_HASH_KEY=" + e.hashKey}
	return e
}

// resolve resolves the configured tables as the consumer does, for the
// producer side of the test.
func (e *tablesEnv) resolve() {
	e.t.Helper()
	cfg, err := loadConfig(e.path, func(k string) (string, bool) {
		if k == "PII_HASH_KEY" {
			return e.hashKey, true
		}
		return "", false
	})
	if err != nil {
		e.t.Fatal(err)
	}
	tables, err := schema.ResolveAll(context.Background(), cfg.tables, e.admin, e.admin,
		schema.ResolveConfig{SourceDB: e.src, TargetDB: e.dst, TopicPrefix: cfg.topicPrefix})
	if err != nil {
		e.t.Fatal(err)
	}
	e.cust, e.read = tables[0], tables[1]
	for _, tb := range tables {
		if _, err := e.adm.CreateTopic(context.Background(), 2, -1, nil, tb.Topic); err != nil {
			e.t.Fatal(err)
		}
	}
}

// image is a source image of tb in its Columns order, from values by
// source column name; a missing name is NULL.
func image(tb *schema.Table, vals map[string]string) []schema.Value {
	img := make([]schema.Value, len(tb.Columns))
	for i, c := range tb.Columns {
		v, ok := vals[c.Source.Name]
		if !ok {
			img[i] = schema.Null
			continue
		}
		img[i] = schema.Value{B: []byte(v)}
	}
	return img
}

// change is the record of one change of tb, at the next binlog position.
func (e *tablesEnv) change(tb *schema.Table, op schema.Op, before, after map[string]string) *kgo.Record {
	e.t.Helper()
	e.pos += 100
	return changeRecord(e.t, tb, e.pos, op, before, after)
}

// changeRecord is the record of one change of tb, at binlog position pos,
// encoded as the producers encode it: images from values by source column
// name (image), nil for no image.
func changeRecord(t testing.TB, tb *schema.Table, pos uint64, op schema.Op, before, after map[string]string) *kgo.Record {
	t.Helper()
	c := schema.Change{Op: op, TsMs: 1759312800000,
		Source: schema.Source{Connector: "sluice", Name: "sluice", DB: tb.Source.DB, Table: tb.Source.Table,
			File: "mysql-bin.000001", Pos: pos, Snapshot: "false"}}
	if before != nil {
		c.Before = image(tb, before)
	}
	if after != nil {
		c.After = image(tb, after)
	}
	value, err := schema.AppendChange(nil, tb, &c)
	if err != nil {
		t.Fatal(err)
	}
	key, err := schema.AppendChangeKey(nil, tb, &c)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: tb.Topic, Key: key, Value: value}
}

func (e *tablesEnv) produce(recs ...*kgo.Record) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.kcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// caughtUpAll waits up to d for the group to commit every table topic's
// end offsets.
func (e *tablesEnv) caughtUpAll(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, tb := range []*schema.Table{e.cust, e.read} {
		ends, err := consumer.EndOffsets(ctx, e.adm, tb.Topic)
		if err != nil {
			return err
		}
		if err := consumer.WaitCaughtUp(ctx, e.adm, e.group, tb.Topic, ends, 100*time.Millisecond); err != nil {
			return fmt.Errorf("topic %s: %w", tb.Topic, err)
		}
	}
	return nil
}

// rows returns a target's rows as text, one line a row, sorted.
func (e *tablesEnv) rows(query string) []string {
	e.t.Helper()
	rs, err := e.admin.Query(query)
	if err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func (e *tablesEnv) hash(v string) string {
	m := hmac.New(sha256.New, []byte(e.hashKey))
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

// TestIntegrationConsumeConfigTables: one group reads both tables' topics
// and applies every record to its own table: inserts, updates, deletes
// (leaving tombstones), a record a rule refuses and one that does not
// decode (both dead letters naming why), a Kafka tombstone (only its
// offset). Both targets then hold exactly the expected rows, the dead
// letters say reason, column and rule, and every offset is committed.
func TestIntegrationConsumeConfigTables(t *testing.T) {
	e := newTablesEnv(t)
	// Before migrate, consume names the missing target and the way out.
	if out, errOut, code := e.sluice("consume", "--config", e.path); code != exitUsage ||
		!strings.Contains(errOut, e.dst+".customers does not exist") || !strings.Contains(errOut, "sluice migrate --config") {
		t.Fatalf("consume before migrate: exit %d, want %d naming the missing target and migrate\n%s%s", code, exitUsage, out, errOut)
	}
	e.must("migrate", "--config", e.path)
	e.resolve()

	ann := map[string]string{"id": "1", "email": "  Ann@Example.COM ", "phone": "+33612345678", "full_name": "Ann Lee",
		"signed_up": "2025-10-01 10:00:00", "seen": "2025-10-01 10:00:00.123"}
	ann2 := map[string]string{"id": "1", "email": "  Ann@Example.COM ", "phone": "+33600000001", "full_name": "Ann Lee-Smith",
		"signed_up": "2025-10-01 10:00:00", "seen": "2025-10-02 08:30:00.500"}
	bob := map[string]string{"id": "2", "email": "bob@x.org", "full_name": "Bob", "signed_up": "2024-02-29 23:59:59", "seen": "2025-10-01 11:00:00.000"}
	cid := map[string]string{"id": "3", "email": "c@x.org", "phone": "12", "full_name": "Cid", "signed_up": "2025-01-01 00:00:00", "seen": "2025-10-01 12:00:00.000"}
	late := map[string]string{"id": "4", "email": "d@x.org", "full_name": "Dee", "signed_up": "2150-01-01 00:00:00", "seen": "2025-10-01 12:00:00.000"}

	r7 := map[string]string{"site": "PAR1", "probe": "7", "at": "2025-10-01 10:00:00.000001", "value": "1.500000000000000000000000000000",
		"note": "héllo", "flags": "a,b", "raw": "\x00\x01\x02\xff", "n": "1"}
	r7b := map[string]string{"site": "PAR1", "probe": "7", "at": "2025-10-01 10:00:00.000001", "value": "-2.250000000000000000000000000000",
		"note": "updated", "flags": "b", "raw": "\xfe", "n": "1"}
	r8 := map[string]string{"site": "PAR1", "probe": "8", "at": "2025-10-01 10:00:00.000001", "flags": "", "n": "2"}
	lys := map[string]string{"site": "LYS2", "probe": "7", "at": "2025-10-01 10:00:00.000000", "value": "0.000000000000000000000000000000", "n": "3"}
	lysMoved := map[string]string{"site": "LYS2", "probe": "9", "at": "2025-10-01 10:00:00.000000", "value": "3.000000000000000000000000000000", "n": "3"}
	gone := map[string]string{"site": "MRS3", "probe": "1", "at": "2025-10-03 00:00:00.000000", "n": "4"}

	e.produce(
		e.change(e.cust, schema.OpCreate, nil, ann),
		e.change(e.read, schema.OpCreate, nil, r7),
		e.change(e.cust, schema.OpCreate, nil, bob),
		e.change(e.read, schema.OpCreate, nil, r8),
		e.change(e.cust, schema.OpCreate, nil, cid),
		e.change(e.read, schema.OpCreate, nil, lys),
		e.change(e.cust, schema.OpUpdate, ann, ann2),
		e.change(e.read, schema.OpUpdate, r7, r7b),
		e.change(e.cust, schema.OpDelete, cid, nil),
		e.change(e.read, schema.OpUpdate, lys, lysMoved), // the key moves: the old key is deleted
		e.change(e.cust, schema.OpCreate, nil, late),     // refused by the rule signed_up max
		e.change(e.read, schema.OpCreate, nil, gone),
		e.change(e.read, schema.OpDelete, gone, nil),
		&kgo.Record{Topic: e.read.Topic, Key: []byte(`{"site":"x"}`), Value: []byte(`{"op":"c","after":`)}, // does not decode
		&kgo.Record{Topic: e.read.Topic, Key: []byte(`{"site":"y"}`)},                                      // a Kafka tombstone
	)
	addr := freeAddr(t)
	p := e.startRun("consume", "--config", e.path, "--batch-size", "4", "--linger", "100ms", "--consumers", "2", "--metrics-addr", addr)
	if err := e.caughtUpAll(2 * time.Minute); err != nil {
		t.Fatalf("the group did not commit every record: %v\n%s", err, p.logs)
	}
	upserted, _ := sumSeries(t, addr, "sluice_consumer_table_rows_upserted_total")
	allUpserted, _ := sumSeries(t, addr, "sluice_consumer_rows_upserted_total")
	body := string(metricsBody(t, addr))
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(t, time.Minute); code != 0 && code != exitPartial {
		t.Fatalf("consume --config: exit %d\n%s", code, p.logs)
	}

	gotCust := e.rows("SELECT CONCAT_WS('|', id, email, COALESCE(phone, 'NULL'), name, signed_up, seen, source_version) FROM " + e.dst + ".customers")
	v := func(pos int) uint64 { return 1<<32 | uint64(pos) }
	wantCust := []string{
		fmt.Sprintf("1|%s|********0001|Ann Lee-Smith|2025-10-01 10:00:00|2025-10-02 08:30:00.500|%d", e.hash("ann@example.com"), v(700)),
		fmt.Sprintf("2|%s|NULL|Bob|2024-02-29 23:59:59|2025-10-01 11:00:00.000|%d", e.hash("bob@x.org"), v(300)),
	}
	if !slices.Equal(gotCust, wantCust) {
		t.Errorf("customers:\n got %q\nwant %q", gotCust, wantCust)
	}
	gotRead := e.rows("SELECT CONCAT_WS('|', site, probe, at, COALESCE(value, 'NULL'), COALESCE(note, 'NULL'), COALESCE(flags, 'NULL'), COALESCE(HEX(raw), 'NULL'), n, source_version) FROM " + e.dst + ".readings")
	wantRead := []string{
		fmt.Sprintf("LYS2|9|2025-10-01 10:00:00.000000|3.000000000000000000000000000000|NULL|NULL|NULL|3|%d", v(1000)),
		fmt.Sprintf("PAR1|7|2025-10-01 10:00:00.000001|-2.250000000000000000000000000000|updated|b|FE|1|%d", v(800)),
		fmt.Sprintf("PAR1|8|2025-10-01 10:00:00.000001|NULL|NULL||NULL|2|%d", v(400)),
	}
	if !slices.Equal(gotRead, wantRead) {
		t.Errorf("readings:\n got %q\nwant %q", gotRead, wantRead)
	}
	if got := e.rows("SELECT CONCAT_WS('|', id, source_version) FROM " + e.dst + ".customers_tombstones"); !slices.Equal(got, []string{fmt.Sprintf("3|%d", v(900))}) {
		t.Errorf("customers_tombstones: %q, want id 3's delete", got)
	}
	if got := e.rows("SELECT CONCAT_WS('|', site, probe, source_version) FROM " + e.dst + ".readings_tombstones"); !slices.Equal(got, []string{
		fmt.Sprintf("LYS2|7|%d", v(1000)), fmt.Sprintf("MRS3|1|%d", v(1300))}) {
		t.Errorf("readings_tombstones: %q, want the moved key and the deleted one", got)
	}

	// The dead letters: one each, saying why.
	dl := e.committedRecords(e.group + ".dlq")
	if len(dl) != 2 {
		t.Errorf("%d dead letters, want 2", len(dl))
	}
	byReason := map[string]*kgo.Record{}
	for _, r := range dl {
		reason, _ := consumer.Header(r, schema.DLQHeaderReason)
		byReason[reason] = r
	}
	if r := byReason[consumer.ReasonValidation]; r == nil {
		t.Errorf("no validation dead letter among %d", len(dl))
	} else {
		msg, _ := consumer.Header(r, schema.DLQHeaderError)
		topic, _ := consumer.Header(r, schema.DLQHeaderTopic)
		for _, want := range []string{"column signed_up", "rule max", e.src + ".customers"} {
			if !strings.Contains(msg, want) {
				t.Errorf("validation dead letter %q does not name %s", msg, want)
			}
		}
		if topic != e.cust.Topic {
			t.Errorf("validation dead letter from topic %s, want %s", topic, e.cust.Topic)
		}
	}
	if r := byReason[consumer.ReasonDecode]; r == nil {
		t.Errorf("no decode dead letter among %d", len(dl))
	} else if msg, _ := consumer.Header(r, schema.DLQHeaderError); !strings.Contains(msg, "malformed") || !strings.Contains(msg, e.read.Topic) {
		t.Errorf("decode dead letter %q does not say malformed and name %s", msg, e.read.Topic)
	}

	// Metrics by table: rows written and dead letters. How many upserts a
	// batch merges depends on how the records fell into batches: between
	// the 5 rows kept and the 10 upserts produced.
	if upserted < 5 || upserted > 10 || upserted != allUpserted {
		t.Errorf("sluice_consumer_table_rows_upserted_total sums to %v, want 5 to 10 and sluice_consumer_rows_upserted_total's %v", upserted, allUpserted)
	}
	for _, want := range []string{
		fmt.Sprintf(`sluice_consumer_table_dlq_records_total{reason="validation",table="%s.customers"} 1`, e.dst),
		fmt.Sprintf(`sluice_consumer_table_dlq_records_total{reason="decode",table="%s.readings"} 1`, e.dst),
		fmt.Sprintf(`sluice_consumer_table_records_total{table="%s.readings"} 9`, e.dst),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestIntegrationConsumeConfigKilledLosesNothing: a table-driven member
// killed (SIGKILL) mid-stream has committed no offset ahead of its tables,
// and a restarted one brings both tables to every record.
func TestIntegrationConsumeConfigKilledLosesNothing(t *testing.T) {
	e := newTablesEnv(t)
	e.must("migrate", "--config", e.path)
	e.resolve()
	const perTable = 3000
	// where[topic][partition][offset] is the key the record there writes.
	where := map[string]map[int32]map[int64]string{}
	var recs []*kgo.Record
	for i := 1; i <= perTable; i++ {
		recs = append(recs,
			e.change(e.cust, schema.OpCreate, nil, map[string]string{"id": fmt.Sprint(i), "email": fmt.Sprintf("u%d@x.org", i),
				"full_name": "U", "signed_up": "2025-10-01 10:00:00", "seen": "2025-10-01 10:00:00.000"}),
			e.change(e.read, schema.OpCreate, nil, map[string]string{"site": "PAR1", "probe": fmt.Sprint(i),
				"at": "2025-10-01 10:00:00.000000", "n": fmt.Sprint(i)}))
	}
	e.produce(recs...)
	for i, r := range recs {
		if where[r.Topic] == nil {
			where[r.Topic] = map[int32]map[int64]string{}
		}
		if where[r.Topic][r.Partition] == nil {
			where[r.Topic][r.Partition] = map[int64]string{}
		}
		where[r.Topic][r.Partition][r.Offset] = fmt.Sprint(i/2 + 1)
	}
	// checkBehind: every record below a committed offset is in its table.
	checkBehind := func() (committed int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		offs, err := e.adm.FetchOffsets(ctx, e.group)
		if err != nil {
			return 0 // not joined yet
		}
		have := map[string]map[string]bool{
			e.cust.Topic: set(e.rows("SELECT id FROM " + e.dst + ".customers")),
			e.read.Topic: set(e.rows("SELECT probe FROM " + e.dst + ".readings")),
		}
		for topic, parts := range offs {
			for p, o := range parts {
				for off := int64(0); off < o.At; off++ {
					if k, ok := where[topic][p][off]; ok && !have[topic][k] {
						t.Errorf("%s/%d committed at %d, but the record at %d (key %s) is not in its table", topic, p, o.At, off, k)
						return committed
					}
				}
				committed += o.At
			}
		}
		return committed
	}
	// Static membership: the restart takes the killed member's place at
	// once instead of waiting out its session.
	p := e.startRun("consume", "--config", e.path, "--consumers", "1", "--batch-size", "100", "--linger", "100ms", "--instance-id", "kill")
	p.waitFor(t, 2*time.Minute, "a quarter of the records applied", func() bool {
		checkBehind()
		return e.count("SELECT COUNT(*) FROM "+e.dst+".customers")+e.count("SELECT COUNT(*) FROM "+e.dst+".readings") >= perTable/2
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	atKill := e.count("SELECT COUNT(*) FROM "+e.dst+".customers") + e.count("SELECT COUNT(*) FROM "+e.dst+".readings")
	if atKill >= 2*perTable {
		t.Fatalf("the member finished before the kill (%d rows); the test needs a mid-run kill", atKill)
	}
	checkBehind()

	p2 := e.startRun("consume", "--config", e.path, "--consumers", "1", "--linger", "100ms", "--instance-id", "kill")
	if err := e.caughtUpAll(3 * time.Minute); err != nil {
		t.Fatalf("the restarted member did not catch up: %v\n%s", err, p2.logs)
	}
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	if code := p2.exitCode(t, time.Minute); code != 0 {
		t.Errorf("consume --config after SIGTERM: exit %d\n%s", code, p2.logs)
	}
	if got := checkBehind(); got != 2*perTable {
		t.Errorf("committed offsets add up to %d, want %d", got, 2*perTable)
	}
	for _, q := range []string{"customers", "readings"} {
		if n := e.count("SELECT COUNT(*) FROM " + e.dst + "." + q); n != perTable {
			t.Errorf("%s holds %d rows after the restart, want %d", q, n, perTable)
		}
	}
	t.Logf("killed at %d of %d rows", atKill, 2*perTable)
}

func set(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}
