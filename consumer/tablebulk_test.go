package consumer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-dev/sluice/schema"
)

// wiredDB opens a pool with Sluice's session settings that dials through a
// Wire, as cmd/sluice opens the target's.
func wiredDB(t *testing.T) (*sql.DB, *Wire) {
	t.Helper()
	cfg, err := mysql.ParseDSN(os.Getenv("SLUICE_TEST_MYSQL_DSN") + testDSNParams)
	if err != nil {
		t.Fatal(err)
	}
	wire := NewWire()
	cfg.DialFunc = wire.Dial
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db, wire
}

// bulkEnv is a source table of every type the writer carries, and two
// targets of it: one written by a TableWriter with the upsert alone, one
// by a TableWriter whose pool dials through a Wire and that bulk inserts.
type bulkEnv struct {
	t          *testing.T
	ctx        context.Context
	db         *sql.DB
	src        string
	up, bulk   *schema.Table
	wup, wbulk *TableWriter
	kept, back int // the bulk writer's bulk inserts kept and rolled back
	offset     int64
}

const bulkTypesDDL = `(
  id   BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  ti   TINYINT NULL,
  su   SMALLINT UNSIGNED NULL,
  mi   MEDIUMINT NULL,
  i    INT NULL,
  bi   BIGINT NULL,
  dec65 DECIMAL(65,30) NULL,
  dec52 DECIMAL(5,2) NULL,
  f    FLOAT NULL,
  d    DOUBLE NULL,
  vc   VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL,
  ch   CHAR(4) NULL,
  bn   BINARY(4) NULL,
  vb   VARBINARY(16) NULL,
  bl   BLOB NULL,
  tx   TEXT NULL,
  b1   BIT(1) NULL,
  b10  BIT(10) NULL,
  y    YEAR NULL,
  dt   DATE NULL,
  dt0  DATETIME NULL,
  dt6  DATETIME(6) NULL,
  ts0  TIMESTAMP NULL DEFAULT NULL,
  ts3  TIMESTAMP(3) NULL DEFAULT NULL,
  tm   TIME NULL,
  tm6  TIME(6) NULL,
  j    JSON NULL,
  e    ENUM('a','b','c') NULL,
  s    SET('x','y','z') NULL,
  n    INT NULL)`

// bulkTypeRows are the source's rows: edge values of each type, and a row
// of NULLs.
var bulkTypeRows = []string{
	`(1, -128, 65535, -8388608, -2147483648, -9223372036854775808, 99999999999999999999999999999999999.999999999999999999999999999999, -999.99,
	  3.14159274, 0.1, 'hé😀 \\ '' "', 'abcd', X'61000000', X'00FFFE', X'00010203FF00', 'line\nnext\ttab\\', b'1', b'1000000001', 2155,
	  '1000-01-01', '9999-12-31 23:59:59', '1969-12-31 23:59:59.999999', '1970-01-01 00:00:01', '2038-01-19 03:14:07.999',
	  '-838:59:59', '838:59:59.000000', '{"a": [1, "é", null]}', 'c', 'x,z', NULL)`,
	`(18446744073709551615, 127, 0, 8388607, 2147483647, 9223372036854775807, -0.000000000000000000000000000001, 0.00,
	  -3.40282e38, 1.7976931348623157e308, '', '', X'00000000', X'', X'', '', b'0', b'0', 1901,
	  '2024-02-29', '2024-02-29 12:00:00', '2024-02-29 12:00:00.000001', '2000-01-01 00:00:00', '2000-01-01 00:00:00.001',
	  '00:00:00', '-00:00:00.000001', '[]', 'a', '', NULL)`,
	`(9223372036854775808, 0, 1, 0, 0, 0, 0, 1.5, 1.17549435e-38, -2.2250738585072014e-308, 'NUL\0BYTE', 'ü', X'FF', X'5C4E', X'5C4E', '\\N',
	  NULL, b'1111111111', 0, '2025-10-01', '2025-10-01 00:00:00', '2025-10-01 00:00:00.5', '2025-10-01 01:02:03', '2025-10-01 01:02:03.456',
	  '12:34:56', '-12:34:56.789', '"text"', 'b', 'x,y,z', NULL)`,
	`(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
}

func newBulkEnv(t *testing.T) *bulkEnv {
	t.Helper()
	db, _ := servers(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	e := &bulkEnv{t: t, ctx: t.Context(), db: db, src: "it_bksrc_" + id}
	dst := []string{"it_bkup_" + id, "it_bkbulk_" + id}
	t.Cleanup(func() {
		for _, d := range append(dst, e.src) {
			db.Exec("DROP DATABASE IF EXISTS " + d)
		}
	})
	e.exec("CREATE DATABASE " + e.src)
	e.exec("CREATE TABLE " + e.src + ".alltypes " + bulkTypesDDL)
	e.exec("INSERT INTO " + e.src + ".alltypes VALUES " + strings.Join(bulkTypeRows, ","))
	wdb, wire := wiredDB(t)
	for n, d := range dst {
		spec := schema.TableSpec{Source: "alltypes", Key: []string{"id"}}
		rc := schema.ResolveConfig{SourceDB: e.src, TargetDB: d, TopicPrefix: "sluice", CreateMissing: true}
		tbl, err := schema.Resolve(e.ctx, spec, db, db, rc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := schema.MigrateTable(e.ctx, db, tbl); err != nil {
			t.Fatal(err)
		}
		pool := db
		if n == 1 {
			pool = wdb
		}
		w, err := NewTableWriter(e.ctx, pool, tbl)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			e.up, e.wup = tbl, w
			continue
		}
		if why, err := w.UseBulkInsert(e.ctx, wire); err != nil || why != "" {
			t.Fatalf("the target takes no bulk insert: %q, %v", why, err)
		}
		w.bulk.done = func(kept bool) {
			if kept {
				e.kept++
			} else {
				e.back++
			}
		}
		e.bulk, e.wbulk = tbl, w
	}
	return e
}

func (e *bulkEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.ExecContext(e.ctx, q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// rows reads table's rows as the backfill reads them (the canonical texts),
// ordered by id.
func (e *bulkEnv) rows(table string, cols []schema.Column, where string) [][]schema.Value {
	e.t.Helper()
	var exprs []string
	for _, c := range cols {
		x, err := schema.SelectExpr(c)
		if err != nil {
			e.t.Fatal(err)
		}
		exprs = append(exprs, x)
	}
	rows, err := e.db.QueryContext(e.ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+table+" WHERE "+where+" ORDER BY id")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out [][]schema.Value
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		dest := make([]any, len(cols))
		for i := range raw {
			dest[i] = &raw[i]
		}
		if err := rows.Scan(dest...); err != nil {
			e.t.Fatal(err)
		}
		var vals []schema.Value
		for i, c := range cols {
			var b []byte
			if raw[i] != nil {
				b = append([]byte{}, raw[i]...)
			}
			_, v, err := schema.AppendText(nil, c, b)
			if err != nil {
				e.t.Fatal(err)
			}
			vals = append(vals, v)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// records makes a backfill read of each source row the where clause picks,
// at version pos.
func (e *bulkEnv) records(where string, pos uint64) []TableRecord {
	e.t.Helper()
	var cols []schema.Column
	for _, c := range e.up.Columns {
		cols = append(cols, c.Source)
	}
	var recs []TableRecord
	for _, img := range e.rows(e.src+".alltypes", cols, where) {
		e.offset++
		recs = append(recs, TableRecord{Change: &schema.Change{Op: schema.OpRead, After: img,
			Source: schema.Source{File: "bin.000001", Pos: pos}}, Topic: "bk", Offset: e.offset})
	}
	return recs
}

// write writes recs through both writers and checks that they count the
// same.
func (e *bulkEnv) write(what string, recs []TableRecord) TableResult {
	e.t.Helper()
	up, err := e.wup.Write(e.ctx, recs)
	if err != nil {
		e.t.Fatalf("%s: upsert writer: %v", what, err)
	}
	bk, err := e.wbulk.Write(e.ctx, recs)
	if err != nil {
		e.t.Fatalf("%s: bulk writer: %v", what, err)
	}
	if countsOf(up) != countsOf(bk) {
		e.t.Errorf("%s: the bulk writer counts %s, the upsert writer %s", what, countsOf(bk), countsOf(up))
	}
	return bk
}

// same checks that both targets hold the same rows, byte for byte: every
// column's text, the stored values compared by the server (a FLOAT's or a
// DOUBLE's bits, not their printed texts), and the versions.
func (e *bulkEnv) same(what string) {
	e.t.Helper()
	var cols []schema.Column
	var cmp []string
	for _, c := range e.up.Columns {
		cols = append(cols, c.Target)
		q, _ := schema.QuoteIdent(c.Target.Name)
		cmp = append(cmp, "BINARY a."+q+" <=> BINARY b."+q, "a."+q+" <=> b."+q)
	}
	cols = append(cols, schema.Column{Name: "source_version", DataType: "bigint", ColumnType: "bigint(20) unsigned", Unsigned: true, Nullable: true})
	cmp = append(cmp, "a.source_version <=> b.source_version")
	a, b := e.rows(e.up.Target.String(), cols, "TRUE"), e.rows(e.bulk.Target.String(), cols, "TRUE")
	if len(a) != len(b) {
		e.t.Fatalf("%s: %d rows through the upsert, %d through the bulk insert", what, len(a), len(b))
	}
	for r := range a {
		for c := range cols {
			if a[r][c].Null != b[r][c].Null || string(a[r][c].B) != string(b[r][c].B) {
				e.t.Errorf("%s: row %d, column %s: upsert %q (null %v), bulk %q (null %v)", what, r, cols[c].Name,
					a[r][c].B, a[r][c].Null, b[r][c].B, b[r][c].Null)
			}
		}
	}
	var differ int
	q := "SELECT COUNT(*) FROM " + e.up.Target.String() + " a JOIN " + e.bulk.Target.String() + " b ON a.id = b.id WHERE NOT (" +
		strings.Join(cmp, " AND ") + ")"
	if err := e.db.QueryRowContext(e.ctx, q).Scan(&differ); err != nil {
		e.t.Fatal(err)
	}
	if differ != 0 {
		e.t.Errorf("%s: %d rows differ between the targets as the server compares them", what, differ)
	}
}

// TestIntegrationTableBulkInsertMatchesUpsert: a batch of new rows of every
// type, with each type's edge values and NULLs, goes through MariaDB's bulk
// insert and lands byte for byte as through the upsert, with the same
// counts; a re-run writes nothing; a batch meeting one existing row (the
// look-up off, as on a first load) falls back to the upsert, which merges
// it.
func TestIntegrationTableBulkInsertMatchesUpsert(t *testing.T) {
	e := newBulkEnv(t)
	recs := e.records("TRUE", 100)
	if len(recs) != len(bulkTypeRows) {
		t.Fatalf("%d source rows", len(recs))
	}
	res := e.write("first load", recs)
	if res.Inserted != len(recs) || res.Updated+res.Unchanged != 0 {
		t.Errorf("first load: %s", countsOf(res))
	}
	if e.kept != 1 || e.back != 0 {
		t.Fatalf("first load: %d bulk inserts kept, %d rolled back; want 1 kept", e.kept, e.back)
	}
	e.same("first load")

	// A re-run. The first load met no existing row, so the look-up is
	// off: the bulk insert meets the first existing key and falls back,
	// and the upsert finds every row as it is.
	if res := e.write("re-run", e.records("TRUE", 100)); res.Unchanged != len(recs) || res.Inserted+res.Updated != 0 {
		t.Errorf("re-run: %s", countsOf(res))
	}
	if e.kept != 1 || e.back != 1 {
		t.Errorf("re-run: %d bulk inserts kept, %d rolled back; want 1 and 1", e.kept, e.back)
	}
	e.same("re-run")

	// The look-up off (the last batch met no existing row): the bulk
	// insert of a batch holding an existing key fails on it, and the
	// upsert merges that row and inserts the new ones.
	e.exec("INSERT INTO " + e.src + ".alltypes (id, vc) VALUES (10, 'ten'), (11, 'eleven')")
	e.exec("UPDATE " + e.src + ".alltypes SET vc = 'changed' WHERE id = 1")
	e.wup.look.off, e.wbulk.look.off = true, true
	res = e.write("a batch meeting an existing key", e.records("id IN (1, 10, 11)", 200))
	if res.Inserted != 2 || res.Updated != 1 {
		t.Errorf("a batch meeting an existing key: %s, want 2 inserted and 1 updated", countsOf(res))
	}
	if e.kept != 1 || e.back != 2 {
		t.Errorf("a batch meeting an existing key: %d bulk inserts kept, %d rolled back; want 1 and 2", e.kept, e.back)
	}
	e.same("a batch meeting an existing key")

	// The look-up on: the new rows of a batch that also changes an
	// existing one go as a bulk insert, the change as the upsert.
	e.exec("INSERT INTO " + e.src + ".alltypes (id, vc) VALUES (12, 'twelve'), (13, 'thirteen')")
	e.exec("UPDATE " + e.src + ".alltypes SET vc = 'again' WHERE id = 10")
	e.wup.look.off, e.wbulk.look.off = false, false
	res = e.write("new rows beside a change", e.records("id IN (2, 10, 12, 13)", 300))
	if res.Inserted != 2 || res.Updated != 1 || res.Unchanged != 1 {
		t.Errorf("new rows beside a change: %s, want 2 inserted, 1 updated, 1 unchanged", countsOf(res))
	}
	if e.kept != 2 || e.back != 2 {
		t.Errorf("new rows beside a change: %d bulk inserts kept, %d rolled back; want 2 and 2", e.kept, e.back)
	}
	e.same("new rows beside a change")
}

// TestIntegrationTableBulkInsertRefused: a row the server warns about (a
// DECIMAL rounded) makes the bulk insert fall back, and the upsert lands
// every row as it would have; a row the server refuses (too long for its
// column) fails the batch with the upsert's error, the server's own, and
// leaves nothing of it behind; without it the batch lands.
func TestIntegrationTableBulkInsertRefused(t *testing.T) {
	e := newBulkEnv(t)
	for _, tbl := range []*schema.Table{e.up, e.bulk} {
		e.exec("ALTER TABLE " + tbl.Target.String() + " MODIFY dec52 DECIMAL(5,1) NULL, MODIFY ch CHAR(2) NULL")
	}
	e.exec("UPDATE " + e.src + ".alltypes SET dec52 = 1.25, ch = 'ab' WHERE id = 1")
	e.exec("UPDATE " + e.src + ".alltypes SET ch = 'ab' WHERE id IN (18446744073709551615, 9223372036854775808)")
	res := e.write("a rounded DECIMAL", e.records("TRUE", 100))
	if res.Inserted != len(bulkTypeRows) {
		t.Errorf("a rounded DECIMAL: %s", countsOf(res))
	}
	if e.kept != 0 || e.back != 1 {
		t.Errorf("a rounded DECIMAL: %d bulk inserts kept, %d rolled back; want 0 and 1", e.kept, e.back)
	}
	e.same("a rounded DECIMAL")
	var got string
	if err := e.db.QueryRowContext(e.ctx, "SELECT dec52 FROM "+e.bulk.Target.String()+" WHERE id = 1").Scan(&got); err != nil || got != "1.3" {
		t.Errorf("the rounded DECIMAL: %q, %v", got, err)
	}

	e.exec("INSERT INTO " + e.src + ".alltypes (id, ch) VALUES (20, 'ok'), (21, 'long'), (22, 'ok')")
	_, err := e.wbulk.Write(e.ctx, e.records("id >= 20 AND id < 30", 200))
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1406 || !strings.Contains(err.Error(), "upsert") {
		t.Errorf("a row too long for its column: %v, want the upsert's error 1406", err)
	}
	if e.back != 2 {
		t.Errorf("a row too long for its column: %d bulk inserts rolled back, want 2", e.back)
	}
	var n int
	if err := e.db.QueryRowContext(e.ctx, "SELECT COUNT(*) FROM "+e.bulk.Target.String()+" WHERE id >= 20 AND id < 30").Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed batch left %d rows (%v)", n, err)
	}
	e.exec("DELETE FROM " + e.src + ".alltypes WHERE id = 21")
	res = e.write("the batch without the row", e.records("id >= 20 AND id < 30", 200))
	if res.Inserted != 2 || e.kept != 1 {
		t.Errorf("the batch without the row: %s, %d bulk inserts kept", countsOf(res), e.kept)
	}
	e.same("the batch without the row")
}

// TestIntegrationWireDriverAssumptions checks what wire.go relies on in
// go-sql-driver, so that a driver upgrade that changes it fails here
// instead of silently sending every row through the upsert: the pool dials
// through DialFunc; the driver's handshake answer is one whole packet (the
// socket asks for bulk operations in it); a query's packet is written whole
// (the probe finds its token); the driver starts each command at sequence
// 0 and reads nothing ahead, so that a bulk insert written and read on its
// socket inside Conn.Raw leaves the driver in step: text queries, prepared
// statements and the transaction carry on, on the same session; and the
// pool's liveness check keeps the connection afterwards.
func TestIntegrationWireDriverAssumptions(t *testing.T) {
	db, _ := servers(t)
	ctx := t.Context()
	var b [4]byte
	_, _ = rand.Read(b[:])
	database := "it_wire_" + hex.EncodeToString(b[:])
	t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + database) })
	for _, q := range []string{"CREATE DATABASE " + database, "CREATE TABLE " + database + ".t (id INT PRIMARY KEY, v VARCHAR(10))"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	wdb, wire := wiredDB(t)
	wdb.SetMaxOpenConns(1)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id1 int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id1); err != nil {
		t.Fatal(err)
	}
	wc, why, err := wire.bind(ctx, conn)
	if err != nil || wc == nil {
		t.Fatalf("the socket under the driver's connection: %q, %v (did the driver dial through DialFunc and answer the greeting in one packet?)", why, err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SET @sluice_marker = 'kept'"); err != nil {
		t.Fatal(err)
	}
	var cmds bulkCmds
	cmds.reset(bulkHeader([]byte{0x03, 0, 0xfe, 0}), 1<<20)
	for i := range 3 {
		mark := len(cmds.buf)
		cmds.buf = append(cmds.buf, indicatorNone, byte(i+1), 0, 0, 0)
		cmds.buf = appendLenenc(append(cmds.buf, indicatorNone), fmt.Sprint("v", i+1))
		cmds.endRow(mark)
	}
	stmt := "INSERT INTO " + database + ".t (id, v) VALUES (?, ?)"
	for round := range 2 { // the second round reuses the statement prepared in the first
		affected, warnings, err := wc.bulkInsert(ctx, conn, stmt, &cmds)
		if err != nil || affected != 3 || warnings != 0 {
			t.Fatalf("round %d: bulk insert: %d rows, %d warnings, %v", round, affected, warnings, err)
		}
		// The driver carries on: a prepared statement (binary protocol),
		// a text query, on the same session and in the transaction.
		ps, err := tx.PrepareContext(ctx, "SELECT COUNT(*), @sluice_marker FROM "+database+".t WHERE id > ?")
		if err != nil {
			t.Fatalf("round %d: prepare after the bulk insert: %v", round, err)
		}
		var n int
		var marker string
		err = ps.QueryRowContext(ctx, 0).Scan(&n, &marker)
		ps.Close()
		if err != nil || n != 3 || marker != "kept" {
			t.Fatalf("round %d: after the bulk insert: %d rows, marker %q, %v", round, n, marker, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+database+".t WHERE id > ?", 0); err != nil {
			t.Fatalf("round %d: a statement after the bulk insert: %v", round, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// Back from the pool (its liveness check saw no bytes left over), the
	// same connection.
	var id2 int64
	if err := wdb.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id2); err != nil || id2 != id1 {
		t.Errorf("after the bulk inserts the pool gave connection %d (%v), want %d", id2, err, id1)
	}
}
