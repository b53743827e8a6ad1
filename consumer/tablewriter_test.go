package consumer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

// gwEnv is a source table of mixed types with a composite, non-time key,
// its target created by schema.MigrateTable from the resolved spec, and a
// TableWriter on it.
type gwEnv struct {
	t        *testing.T
	ctx      context.Context
	db       *sql.DB
	src, dst string
	table    *schema.Table
	w        *TableWriter
	offset   int64
}

func newGWEnv(t *testing.T) *gwEnv {
	t.Helper()
	db, _ := servers(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	e := &gwEnv{t: t, ctx: t.Context(), db: db, src: "it_gwsrc_" + id, dst: "it_gwdst_" + id}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + e.src)
		db.Exec("DROP DATABASE IF EXISTS " + e.dst)
	})
	e.exec("CREATE DATABASE " + e.src)
	e.exec(`CREATE TABLE ` + e.src + `.mixed (
  id     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  site   VARCHAR(16) NOT NULL,
  day    DATE NOT NULL,
  seq    SMALLINT NOT NULL,
  name   VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL,
  amount DECIMAL(12,4) NULL,
  ratio  DOUBLE NULL,
  f      FLOAT NULL,
  flags  BIT(10) NULL,
  raw    VARBINARY(16) NULL,
  at     DATETIME(6) NULL,
  ts     TIMESTAMP(3) NULL DEFAULT NULL,
  dur    TIME(2) NULL,
  kind   ENUM('a','b','c') NULL,
  tags   SET('x','y','z') NULL,
  yr     YEAR NULL,
  note   TEXT NULL,
  UNIQUE KEY k (site, day, seq))`)
	spec := schema.TableSpec{
		Source:     "mixed",
		Key:        []string{"site", "day", "seq"},
		Columns:    schema.ColumnsSpec{Exclude: []string{"id"}, Rename: map[string]string{"name": "label"}},
		Transforms: map[string][]schema.TransformSpec{"site": {{Name: schema.TransformUpper}}},
		Rules:      map[string]schema.RuleSpec{"name": {MaxLength: 8}},
	}
	rc := schema.ResolveConfig{SourceDB: e.src, TargetDB: e.dst, TopicPrefix: "sluice", CreateMissing: true}
	tbl, err := schema.Resolve(e.ctx, spec, db, db, rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.MigrateTable(e.ctx, db, tbl); err != nil {
		t.Fatal(err)
	}
	e.table = tbl
	if e.w, err = NewTableWriter(e.ctx, db, tbl); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *gwEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.ExecContext(e.ctx, q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// image reads the source row with id as the backfill reads it: the
// traveling columns' canonical texts, in Table.Columns order.
func (e *gwEnv) image(id int) []schema.Value {
	e.t.Helper()
	rows := e.read(e.src+".mixed", true, fmt.Sprintf("id = %d", id))
	if len(rows) != 1 {
		e.t.Fatalf("source row %d: %d rows", id, len(rows))
	}
	return rows[0].vals
}

type gwRow struct {
	vals     []schema.Value
	version  sql.NullInt64
	loadedAt string
}

// read reads a table's rows (the source's or the target's columns),
// ordered by key, with the target's lineage columns.
func (e *gwEnv) read(table string, source bool, where string) []gwRow {
	e.t.Helper()
	var exprs []string
	var cols []schema.Column
	for _, c := range e.table.Columns {
		col := c.Target
		if source {
			col = c.Source
		}
		x, err := schema.SelectExpr(col)
		if err != nil {
			e.t.Fatal(err)
		}
		exprs = append(exprs, x)
		cols = append(cols, col)
	}
	lineage := "NULL, ''"
	order := "site, day, seq"
	if !source {
		lineage = "source_version, CAST(loaded_at AS CHAR)"
	}
	rows, err := e.db.QueryContext(e.ctx, "SELECT "+strings.Join(exprs, ", ")+", "+lineage+" FROM "+table+" WHERE "+where+" ORDER BY "+order)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []gwRow
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		var r gwRow
		dest := make([]any, 0, len(cols)+2)
		for i := range raw {
			dest = append(dest, &raw[i])
		}
		var loaded sql.NullString
		dest = append(dest, &r.version, &loaded)
		if err := rows.Scan(dest...); err != nil {
			e.t.Fatal(err)
		}
		r.loadedAt = loaded.String
		var buf []byte
		for i, c := range cols {
			var v schema.Value
			var b []byte
			if raw[i] != nil {
				b = append([]byte{}, raw[i]...)
			}
			if buf, v, err = schema.AppendText(buf, c, b); err != nil {
				e.t.Fatal(err)
			}
			r.vals = append(r.vals, v)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// target reads the target's rows, ordered by key.
func (e *gwEnv) target() []gwRow {
	e.t.Helper()
	return e.read(e.dst+".mixed", false, "TRUE")
}

// want is the target row of a source image, by the table's transforms.
func (e *gwEnv) want(img []schema.Value) []schema.Value {
	e.t.Helper()
	out := make([]schema.Value, len(img))
	if _, err := e.table.TargetRow(nil, img, out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// change makes a record of op with the images, at binlog position pos of
// bin.000001 (version 1<<32 | pos).
func (e *gwEnv) change(op schema.Op, before, after []schema.Value, pos uint64) TableRecord {
	e.offset++
	return TableRecord{Change: &schema.Change{Op: op, Before: before, After: after,
		Source: schema.Source{File: "bin.000001", Pos: pos}}, Topic: "gw", Offset: e.offset}
}

func (e *gwEnv) write(recs ...TableRecord) TableResult {
	e.t.Helper()
	res, err := e.w.Write(e.ctx, recs)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func gwVer(pos uint64) int64 { return int64(1<<32 | pos) }

// sameRow compares values byte for byte, naming the first column that
// differs.
func (e *gwEnv) sameRow(what string, got, want []schema.Value) {
	e.t.Helper()
	for i := range want {
		if got[i].Null != want[i].Null || string(got[i].B) != string(want[i].B) {
			e.t.Errorf("%s: column %s: got %q (null %v), want %q (null %v)", what, e.table.Columns[i].Target.Name,
				got[i].B, got[i].Null, want[i].B, want[i].Null)
		}
	}
}

func countsOf(r TableResult) string {
	return fmt.Sprintf("inserted %d updated %d unchanged %d deleted %d tombstoned %d merged %d rejected %d",
		r.Inserted, r.Updated, r.Unchanged, r.Deleted, r.Tombstoned, r.Merged, len(r.Rejected))
}

func (e *gwEnv) tombstone(where string) (v int64, ok bool) {
	e.t.Helper()
	err := e.db.QueryRowContext(e.ctx, "SELECT source_version FROM "+e.dst+".mixed_tombstones WHERE "+where).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return v, true
}

func TestIntegrationTableWriter(t *testing.T) {
	e := newGWEnv(t)
	e.exec(`INSERT INTO ` + e.src + `.mixed (id, site, day, seq, name, amount, ratio, f, flags, raw, at, ts, dur, kind, tags, yr, note) VALUES
 (1, 'a1', '2024-01-15', 1, 'Ünïcode', -12.3400, 0.1, 3.1415927, b'1000000001', X'00275C22FF0A', '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999', '-838:59:59.00', 'b', 'x,z', 2155, 'it''s a \\ back'),
 (2, 'a1', '2024-01-15', 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 'b2', '1999-12-31', -7, 'x', 99999999.9999, -1.5e-300, -0, b'0', X'', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000', '00:00:00.01', 'a', '', 1901, '')`)
	a, b, c := e.image(1), e.image(2), e.image(3)

	t.Run("inserts are byte-exact per type", func(t *testing.T) {
		res := e.write(e.change(schema.OpCreate, nil, a, 100), e.change(schema.OpRead, nil, b, 101), e.change(schema.OpCreate, nil, c, 102))
		if res.Inserted != 3 || res.Updated+res.Unchanged+res.Deleted != 0 {
			t.Fatalf("got %s, want 3 inserted", countsOf(res))
		}
		got := e.target()
		if len(got) != 3 {
			t.Fatalf("target has %d rows, want 3", len(got))
		}
		// Ordered by key: A1/2024-01-15/1, A1/…/2, B2/…
		for i, img := range [][]schema.Value{a, b, c} {
			e.sameRow(fmt.Sprintf("row %d", i), got[i].vals, e.want(img))
			if got[i].version.Int64 != gwVer(100+uint64(i)) {
				t.Errorf("row %d: source_version %d, want %d", i, got[i].version.Int64, gwVer(100+uint64(i)))
			}
		}
		// The server's own view of the bytes, where text could hide them
		// (HEX of a BIT is of its number: b'1000000001' is 0x201).
		var hexRaw, hexFlags, hexLabel, site string
		if err := e.db.QueryRowContext(e.ctx, "SELECT HEX(raw), HEX(flags), HEX(label), site FROM "+e.dst+".mixed WHERE seq = 1").
			Scan(&hexRaw, &hexFlags, &hexLabel, &site); err != nil {
			t.Fatal(err)
		}
		if hexRaw != "00275C22FF0A" || hexFlags != "201" || hexLabel != strings.ToUpper(hex.EncodeToString([]byte("Ünïcode"))) || site != "A1" {
			t.Errorf("got raw %s flags %s label %s site %s", hexRaw, hexFlags, hexLabel, site)
		}
	})

	var a2 []schema.Value
	t.Run("an update applies", func(t *testing.T) {
		e.exec("UPDATE " + e.src + ".mixed SET name = 'ünïcode', amount = 1, note = NULL WHERE id = 1")
		a2 = e.image(1)
		res := e.write(e.change(schema.OpUpdate, a, a2, 200))
		if res.Updated != 1 || res.Inserted+res.Unchanged != 0 {
			t.Fatalf("got %s, want 1 updated", countsOf(res))
		}
		got := e.target()
		e.sameRow("updated row", got[0].vals, e.want(a2))
		if got[0].version.Int64 != gwVer(200) {
			t.Errorf("source_version %d, want %d", got[0].version.Int64, gwVer(200))
		}
	})

	t.Run("the same content writes nothing", func(t *testing.T) {
		before := e.target()[0]
		res := e.write(e.change(schema.OpUpdate, a2, a2, 201), e.change(schema.OpRead, nil, b, 202))
		if res.Unchanged != 2 || res.Updated+res.Inserted != 0 {
			t.Fatalf("got %s, want 2 unchanged", countsOf(res))
		}
		after := e.target()[0]
		if after.loadedAt != before.loadedAt || after.version != before.version {
			t.Errorf("loaded_at %s → %s, source_version %d → %d: want both kept", before.loadedAt, after.loadedAt, before.version.Int64, after.version.Int64)
		}
	})

	t.Run("an older change after a newer one is ignored", func(t *testing.T) {
		res := e.write(e.change(schema.OpUpdate, a2, a, 150))
		if res.Unchanged != 1 || res.Updated != 0 {
			t.Fatalf("got %s, want 1 unchanged", countsOf(res))
		}
		got := e.target()
		e.sameRow("row kept", got[0].vals, e.want(a2))
		if got[0].version.Int64 != gwVer(200) {
			t.Errorf("source_version %d, want %d", got[0].version.Int64, gwVer(200))
		}
	})

	t.Run("a delete leaves a tombstone that an older read cannot pass", func(t *testing.T) {
		res := e.write(e.change(schema.OpDelete, b, nil, 300))
		if res.Deleted != 1 {
			t.Fatalf("got %s, want 1 deleted", countsOf(res))
		}
		if v, ok := e.tombstone("seq = 2"); !ok || v != gwVer(300) {
			t.Fatalf("tombstone %d (found %v), want %d", v, ok, gwVer(300))
		}
		res = e.write(e.change(schema.OpRead, nil, b, 250))
		if res.Tombstoned != 1 || res.Inserted != 0 {
			t.Fatalf("got %s, want 1 tombstoned", countsOf(res))
		}
		if n := len(e.read(e.dst+".mixed", false, "seq = 2")); n != 0 {
			t.Fatalf("deleted key came back: %d rows", n)
		}
		res = e.write(e.change(schema.OpCreate, nil, b, 350))
		if res.Inserted != 1 || res.Tombstoned != 0 {
			t.Fatalf("got %s, want 1 inserted", countsOf(res))
		}
		if _, ok := e.tombstone("seq = 2"); ok {
			t.Error("the tombstone stayed after a newer insert")
		}
		got := e.read(e.dst+".mixed", false, "seq = 2")
		if len(got) != 1 || got[0].version.Int64 != gwVer(350) {
			t.Fatalf("got %d rows (%v), want the insert at %d", len(got), got, gwVer(350))
		}
	})

	t.Run("a key-changing update moves the row", func(t *testing.T) {
		e.exec("UPDATE " + e.src + ".mixed SET seq = 9 WHERE id = 3")
		c2 := e.image(3)
		res := e.write(e.change(schema.OpUpdate, c, c2, 400))
		if res.Deleted != 1 || res.Inserted != 1 {
			t.Fatalf("got %s, want 1 deleted and 1 inserted", countsOf(res))
		}
		if n := len(e.read(e.dst+".mixed", false, "seq = -7")); n != 0 {
			t.Errorf("old key still has %d rows", n)
		}
		if v, ok := e.tombstone("seq = -7"); !ok || v != gwVer(400) {
			t.Errorf("old key's tombstone %d (found %v), want %d", v, ok, gwVer(400))
		}
		got := e.read(e.dst+".mixed", false, "seq = 9")
		if len(got) != 1 {
			t.Fatalf("new key has %d rows", len(got))
		}
		e.sameRow("moved row", got[0].vals, e.want(c2))
		// A late read of the old key, older than the move, stays out.
		if res := e.write(e.change(schema.OpRead, nil, c, 390)); res.Tombstoned != 1 {
			t.Errorf("late read of the old key: got %s, want 1 tombstoned", countsOf(res))
		}
	})

	t.Run("a rule failure is a dead letter, the rest lands", func(t *testing.T) {
		e.exec(`INSERT INTO ` + e.src + `.mixed (id, site, day, seq, name) VALUES (4, 'c3', '2024-01-15', 1, 'far too long a name'), (5, 'c3', '2024-01-15', 2, 'short')`)
		bad, good := e.image(4), e.image(5)
		badRec := e.change(schema.OpCreate, nil, bad, 500)
		res := e.write(badRec, e.change(schema.OpCreate, nil, good, 501))
		if len(res.Rejected) != 1 || res.Inserted != 1 {
			t.Fatalf("got %s, want 1 rejected and 1 inserted", countsOf(res))
		}
		rj := res.Rejected[0]
		var re *schema.RuleError
		if rj.Record != 0 || rj.Offset != badRec.Offset || !errors.As(rj.Err, &re) || re.Column != "name" || re.Rule != schema.RuleMaxLength ||
			!strings.Contains(re.Table, "mixed") {
			t.Fatalf("rejected %+v (rule error %+v), want record 0 at offset %d, column name, rule max_length", rj, re, badRec.Offset)
		}
		if n := len(e.read(e.dst+".mixed", false, "site = 'C3'")); n != 1 {
			t.Errorf("target has %d rows of site C3, want the good one", n)
		}
	})

	t.Run("the last change of a key in a batch wins, its version kept", func(t *testing.T) {
		x := append([]schema.Value{}, a2...)
		y := append([]schema.Value{}, a2...)
		i := slicesIndex(e.table, "name")
		x[i], y[i] = schema.Value{B: []byte("x")}, schema.Value{B: []byte("Ünïcode")}
		res := e.write(e.change(schema.OpUpdate, a2, x, 600), e.change(schema.OpUpdate, x, y, 601), e.change(schema.OpUpdate, y, a2, 602))
		if res.Merged != 2 || res.Unchanged != 1 {
			t.Fatalf("got %s, want 2 merged, 1 unchanged", countsOf(res))
		}
		got := e.target()[0]
		e.sameRow("merged row", got.vals, e.want(a2))
		if got.version.Int64 != gwVer(602) {
			t.Errorf("source_version %d, want %d: the merged changes' version must not be forgotten", got.version.Int64, gwVer(602))
		}
	})

	t.Run("a change of case alone applies", func(t *testing.T) {
		// utf8mb4_general_ci takes ünïcode and ÜNÏCODE for equal: the
		// upsert compares text as bytes.
		x := append([]schema.Value{}, a2...)
		x[slicesIndex(e.table, "name")] = schema.Value{B: []byte("ÜNÏCODE")}
		res := e.write(e.change(schema.OpUpdate, a2, x, 610))
		if res.Updated != 1 {
			t.Fatalf("got %s, want 1 updated", countsOf(res))
		}
		e.sameRow("case-changed row", e.target()[0].vals, e.want(x))
	})

	t.Run("a truncate deletes older rows, and drops older changes that arrive later", func(t *testing.T) {
		seq := slicesIndex(e.table, "seq")
		withSeq := func(n string) []schema.Value {
			v := append([]schema.Value{}, a2...)
			v[seq] = schema.Value{B: []byte(n)}
			return v
		}
		before, after := withSeq("901"), withSeq("902")
		res := e.write(e.change(schema.OpCreate, nil, before, 650), e.change(schema.OpTruncate, nil, nil, 700), e.change(schema.OpCreate, nil, after, 710))
		if res.Truncates != 1 || res.Inserted != 2 {
			t.Fatalf("got %s, %d truncates; want an insert on each side of the truncate", countsOf(res), res.Truncates)
		}
		rows := e.target()
		if len(rows) != 1 {
			t.Fatalf("after the truncate the target holds %d rows, want only the one written after it", len(rows))
		}
		e.sameRow("row written after the truncate", rows[0].vals, e.want(after))
		// A change older than the truncate, arriving late (another
		// partition, a backfill read), is dropped; a newer one applies.
		res = e.write(e.change(schema.OpCreate, nil, a2, 690), e.change(schema.OpCreate, nil, before, 720))
		if res.Truncated != 1 || res.Inserted != 1 {
			t.Fatalf("got %s, %d dropped by the truncate; want the older one dropped, the newer inserted", countsOf(res), res.Truncated)
		}
		if n := len(e.target()); n != 2 {
			t.Errorf("target holds %d rows, want 2 (the rows written after the truncate)", n)
		}
	})
}

// slicesIndex is the index of the source column name in t.Columns.
func slicesIndex(t *schema.Table, name string) int {
	for i, c := range t.Columns {
		if c.Source.Name == name {
			return i
		}
	}
	panic("no column " + name)
}

func TestTableWriterUpsertSQL(t *testing.T) {
	tbl := &schema.Table{
		Target: schema.TableName{DB: "d", Table: "t"},
		Columns: []schema.TableColumn{
			{Target: schema.Column{Name: "k", DataType: "int"}},
			{Target: schema.Column{Name: "name", DataType: "varchar"}},
			{Target: schema.Column{Name: "n", DataType: "decimal"}},
		},
		Key: []int{0},
	}
	w, err := buildTableWriter(tbl, "`d`.`t`", "`d`.`t_tombstones`", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := w.upsert.text(2)
	for _, want := range []string{
		"INSERT INTO `d`.`t` (`k`, `name`, `n`, `source_version`, `loaded_at`) VALUES (?,?,?,?,?),(?,?,?,?,?) ON DUPLICATE KEY UPDATE",
		"BINARY `name` <=> BINARY VALUES(`name`) AND `n` <=> VALUES(`n`)",
		"`n` = IF(@sluice_apply, VALUES(`n`), `n`)",
		"`source_version` = IF(@sluice_apply, VALUES(`source_version`), `source_version`)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("upsert SQL lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "`k` = ") {
		t.Errorf("upsert SQL assigns the key:\n%s", got)
	}
}
