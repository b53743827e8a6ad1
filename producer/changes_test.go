package producer

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

func changesTable() *schema.Table {
	return &schema.Table{Source: schema.TableName{DB: "db", Table: "t"}, Topic: "sluice.db.t", Key: []int{0, 1},
		Columns: []schema.TableColumn{
			{Source: schema.Column{Name: "tenant", DataType: "varchar", Charset: "utf8mb4"}},
			{Source: schema.Column{Name: "code", DataType: "int"}},
			{Source: schema.Column{Name: "note", DataType: "varchar", Charset: "utf8mb4", Nullable: true}},
		}}
}

// TestEncodeChanges checks that each record is the change's AppendChange
// value and AppendChangeKey key, on the table's topic, cut from the slabs
// without sharing bytes, across slab boundaries.
func TestEncodeChanges(t *testing.T) {
	tbl := changesTable()
	changes := make([]schema.Change, 3000)
	for i := range changes {
		note := schema.Value{B: []byte(strings.Repeat("n", i%50))}
		if i == 7 {
			note = schema.Null
		} else if i == 100 {
			note = schema.Value{B: []byte(strings.Repeat("big ", slabSize/3))}
		}
		changes[i] = schema.Change{Op: schema.OpRead, TsMs: 1759371303000,
			After:  []schema.Value{{B: []byte(fmt.Sprintf("t%d", i%4))}, {B: []byte(fmt.Sprint(i - 1500))}, note},
			Source: schema.Source{Connector: "sluice", Name: "sluice", DB: "db", Table: "t", Snapshot: "true", File: "mysql-bin.000001", Pos: 4, Epoch: 2}}
	}
	enc, err := encodeChanges(tbl, changes)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.release()
	for i := range changes {
		key, _ := schema.AppendChangeKey(nil, tbl, &changes[i])
		value, _ := schema.AppendChange(nil, tbl, &changes[i])
		r := &enc.recs[i]
		if r.Topic != tbl.Topic || !bytes.Equal(r.Key, key) || !bytes.Equal(r.Value, value) || cap(r.Key) != len(r.Key) || cap(r.Value) != len(r.Value) {
			t.Fatalf("record %d: topic %s key %s value %.200s", i, r.Topic, r.Key, r.Value)
		}
	}
	if got := string(enc.recs[1].Key); got != `{"tenant":"t1","code":-1499}` {
		t.Errorf("key %s", got)
	}
}

// TestTableSinkRefusesBadChange: a change that does not fit the table fails
// Send, naming the table, and acked is never called.
func TestTableSinkRefusesBadChange(t *testing.T) {
	tbl := changesTable()
	s := &TableSink{t: tbl} // no client: nothing may be produced
	changes := []schema.Change{
		{Op: schema.OpRead, After: []schema.Value{{B: []byte("a")}, {B: []byte("1")}, schema.Null}},
		{Op: schema.OpRead, After: []schema.Value{{B: []byte("a")}, {B: []byte("1")}}},
	}
	err := s.Send(context.Background(), changes, func(error) { t.Error("acked called for a refused Send") })
	if err == nil || !strings.Contains(err.Error(), "table db.t") || !strings.Contains(err.Error(), "change 2 of 2") {
		t.Fatalf("Send: %v, want an error naming table db.t and change 2", err)
	}
}
