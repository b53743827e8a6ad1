package schema_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

// shapes is a Describer from stored descriptions, as a consumer without a
// source DSN has them.
type shapes map[schema.TableName][]byte

func (s shapes) Describe(_ context.Context, t schema.TableName) (schema.SourceShape, error) {
	var sh schema.SourceShape
	b, ok := s[t]
	if !ok {
		return sh, errors.New("no description of " + t.String())
	}
	return sh, json.Unmarshal(b, &sh)
}

// manyKinds is a source table's shape as ReadColumns and ReadUniqueIndexes
// return it, with a column of each kind whose decoding depends on more
// than its name.
func manyKinds() schema.SourceShape {
	return schema.SourceShape{
		Columns: []schema.Column{
			{Name: "id", Ordinal: 1, DataType: "bigint", ColumnType: "bigint(20) unsigned", Unsigned: true, Precision: 20, AutoIncrement: true},
			{Name: "at", Ordinal: 2, DataType: "datetime", ColumnType: "datetime(3)", Precision: 3},
			{Name: "at6", Ordinal: 3, DataType: "datetime", ColumnType: "datetime(6)", Nullable: true, Precision: 6},
			{Name: "ts", Ordinal: 4, DataType: "timestamp", ColumnType: "timestamp", Precision: 0},
			{Name: "amount", Ordinal: 5, DataType: "decimal", ColumnType: "decimal(65,30)", Nullable: true, Precision: 65, Scale: 30},
			{Name: "flags", Ordinal: 6, DataType: "bit", ColumnType: "bit(5)", Nullable: true, Precision: 5},
			{Name: "kind", Ordinal: 7, DataType: "enum", ColumnType: "enum('a','it''s','')", Nullable: true, Charset: "utf8mb4", Collation: "utf8mb4_general_ci", Length: 4, Elements: []string{"a", "it's", ""}},
			{Name: "tags", Ordinal: 8, DataType: "set", ColumnType: "set('x','y')", Nullable: true, Charset: "utf8mb4", Collation: "utf8mb4_general_ci", Length: 3, Elements: []string{"x", "y"}},
			{Name: "name", Ordinal: 9, DataType: "varchar", ColumnType: "varchar(100)", Charset: "utf8mb4", Collation: "utf8mb4_bin", Length: 100},
			{Name: "raw", Ordinal: 10, DataType: "varbinary", ColumnType: "varbinary(16)", Nullable: true, Length: 16},
			{Name: "d", Ordinal: 11, DataType: "date", ColumnType: "date", Nullable: true},
			{Name: "f", Ordinal: 12, DataType: "double", ColumnType: "double", Nullable: true, Precision: 22},
			{Name: "small", Ordinal: 13, DataType: "tinyint", ColumnType: "tinyint(3) unsigned", Unsigned: true, Precision: 3},
			{Name: "upper_name", Ordinal: 14, DataType: "varchar", ColumnType: "varchar(100)", Nullable: true, Charset: "utf8mb4", Collation: "utf8mb4_bin", Length: 100, Generated: true},
		},
		Indexes: []schema.Index{{Name: "PRIMARY", Columns: []string{"id"}}, {Name: "name_at", Columns: []string{"name", "at"}}},
	}
}

// roundTrip stores sh as the producers do and fails the test unless it
// reads back equal; it returns the stored form.
func roundTrip(t *testing.T, sh schema.SourceShape) []byte {
	t.Helper()
	b, err := json.Marshal(sh)
	if err != nil {
		t.Fatal(err)
	}
	var got schema.SourceShape
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sh) {
		t.Fatalf("round trip of\n%s\ngot  %+v\nwant %+v", b, got, sh)
	}
	return b
}

// TestSourceShapeRoundTrip: a stored description reads back as exactly
// what ReadColumns and ReadUniqueIndexes returned, and a table resolved
// from it is the table resolved from the shape itself.
func TestSourceShapeRoundTrip(t *testing.T) {
	want := manyKinds()
	b := roundTrip(t, want)
	name := schema.TableName{DB: "src", Table: "wide"}
	spec := schema.TableSpec{Source: "src.wide", Target: "dst.wide", Columns: schema.ColumnsSpec{Exclude: []string{"upper_name"}}}
	rc := schema.ResolveConfig{SourceDB: "src", TargetDB: "dst", TopicPrefix: "sluice"}
	tb, err := schema.ResolveFrom(context.Background(), spec, shapes{name: b}, nil, rc)
	if err != nil {
		t.Fatal(err)
	}
	if tb.ID.Name != "id" || tb.Topic != "sluice.src.wide" || len(tb.Columns) != len(want.Columns)-1 {
		t.Fatalf("resolved from the description: id %q, topic %q, %d columns; want id, sluice.src.wide, %d", tb.ID.Name, tb.Topic, len(tb.Columns), len(want.Columns)-1)
	}
	for i, c := range tb.Columns {
		if !reflect.DeepEqual(c.Source, want.Columns[i]) {
			t.Errorf("column %d: source %+v, want %+v", i, c.Source, want.Columns[i])
		}
	}
}

// TestResolveFromBadDescription: a description without columns is an
// error naming the table, not a table that travels nothing.
func TestResolveFromBadDescription(t *testing.T) {
	name := schema.TableName{DB: "src", Table: "t"}
	_, err := schema.ResolveFrom(context.Background(), schema.TableSpec{Source: "src.t", ID: "id"}, shapes{name: []byte(`{"columns":[]}`)}, nil,
		schema.ResolveConfig{SourceDB: "src", TargetDB: "dst"})
	if err == nil || err.Error() != "source src.t: the description has no column" {
		t.Fatalf("got %v, want source src.t: the description has no column", err)
	}
}
