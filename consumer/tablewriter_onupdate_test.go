package consumer

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationTableWriterKeepsOnUpdateColumns: a target column the
// server sets to now when a row changes (ON UPDATE CURRENT_TIMESTAMP) keeps
// its value where Sluice did not change it: a traveling one keeps the
// source's value when a merged change only raises the row's version, and a
// target-only one keeps its value through that raise and through an upsert
// that changes the row.
func TestIntegrationTableWriterKeepsOnUpdateColumns(t *testing.T) {
	db, _ := servers(t)
	ctx := t.Context()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	src, dst := "it_ousrc_"+id, "it_oudst_"+id
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + src)
		db.Exec("DROP DATABASE IF EXISTS " + dst)
	})
	e := &gwEnv{t: t, ctx: ctx, db: db, src: src, dst: dst}
	e.exec("CREATE DATABASE " + src)
	e.exec(`CREATE TABLE ` + src + `.ev (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  k          INT NOT NULL,
  name       VARCHAR(16) NULL,
  updated_at TIMESTAMP NULL DEFAULT NULL,
  UNIQUE KEY (k))`)
	spec := schema.TableSpec{Source: "ev", Key: []string{"k"}, Columns: schema.ColumnsSpec{Exclude: []string{"id"}}}
	tbl, err := schema.Resolve(ctx, spec, db, db, schema.ResolveConfig{SourceDB: src, TargetDB: dst, TopicPrefix: "sluice", CreateMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schema.MigrateTable(ctx, db, tbl); err != nil {
		t.Fatal(err)
	}
	// As the IoT target's updated_at, and a target-only column beside it.
	e.exec("ALTER TABLE " + dst + ".ev MODIFY updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP," +
		" ADD touched TIMESTAMP NOT NULL DEFAULT '2001-01-01 00:00:00' ON UPDATE CURRENT_TIMESTAMP")
	e.table = tbl
	if e.w, err = NewTableWriter(ctx, db, tbl); err != nil {
		t.Fatal(err)
	}
	image := func(name string) []schema.Value {
		img := make([]schema.Value, len(tbl.Columns))
		img[slicesIndex(tbl, "k")] = schema.Value{B: []byte("1")}
		img[slicesIndex(tbl, "name")] = schema.Value{B: []byte(name)}
		img[slicesIndex(tbl, "updated_at")] = schema.Value{B: []byte("2020-01-02 03:04:05")}
		return img
	}
	type state struct {
		name, updatedAt, touched string
		version                  int64
	}
	read := func() state {
		t.Helper()
		var s state
		if err := db.QueryRowContext(ctx, "SELECT name, CAST(updated_at AS CHAR), CAST(touched AS CHAR), source_version FROM "+dst+".ev WHERE k = 1").
			Scan(&s.name, &s.updatedAt, &s.touched, &s.version); err != nil {
			t.Fatal(err)
		}
		return s
	}
	e.write(e.change(schema.OpCreate, nil, image("a"), 10))
	first := read()
	if first.version != gwVer(10) {
		t.Fatalf("after the insert: %+v, want version %d", first, gwVer(10))
	}

	// The same state twice, newer: merged, the upsert changes nothing and
	// the row's version is raised.
	res := e.write(e.change(schema.OpUpdate, image("a"), image("a"), 20), e.change(schema.OpUpdate, image("a"), image("a"), 30))
	if res.Merged == 0 {
		t.Fatalf("the two changes were not merged: %s", countsOf(res))
	}
	got := read()
	want := first
	want.version = gwVer(30)
	if got != want {
		t.Errorf("after a merged change that only raises the version: %+v, want %+v (an ON UPDATE column moved)", got, want)
	}

	// A real change: the traveling column takes the source's value, the
	// target-only one stays.
	e.write(e.change(schema.OpUpdate, image("a"), image("b"), 40))
	got = read()
	want.name, want.version = "b", gwVer(40)
	if got != want {
		t.Errorf("after an update: %+v, want %+v (an ON UPDATE column moved)", got, want)
	}
}
