package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

// fakeShapes is a state topic of descriptions; after is what appears once
// the consumer has asked gets times.
type fakeShapes struct {
	kv    map[string][]byte
	after map[string][]byte
	gets  int
}

func (f *fakeShapes) Get(_ context.Context, key string) ([]byte, bool, error) {
	f.gets++
	if f.gets > 2 {
		for k, v := range f.after {
			f.kv[k] = v
		}
	}
	v, ok := f.kv[key]
	return v, ok, nil
}

func (f *fakeShapes) GetPrefix(_ context.Context, prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for k, v := range f.kv {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

func (f *fakeShapes) Put(_ context.Context, key string, value []byte) error {
	f.kv[key] = value
	return nil
}

func (f *fakeShapes) Topic() string { return "sluice.progress" }

// TestStoredShapesWaitsOnce: a description that is not there yet is asked
// for again until it is, and the wait is said once, naming the key.
func TestStoredShapesWaitsOnce(t *testing.T) {
	desc := `{"columns":[{"name":"id","ordinal":1,"data_type":"int","column_type":"int(11)","precision":10}],"indexes":[{"name":"PRIMARY","columns":["id"]}]}`
	kv := &fakeShapes{kv: map[string][]byte{}, after: map[string][]byte{"shape/shop.orders": []byte(desc)}}
	var logs bytes.Buffer
	ss := storedShapes{kv: kv, log: slog.New(slog.NewTextHandler(&logs, nil)), poll: 0}
	sh, err := ss.Describe(context.Background(), schema.TableName{DB: "shop", Table: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.Columns) != 1 || sh.Columns[0].Name != "id" || kv.gets != 3 {
		t.Fatalf("got %+v after %d reads, want the column id after 3", sh, kv.gets)
	}
	if n := strings.Count(logs.String(), "not described yet"); n != 1 || !strings.Contains(logs.String(), "key=shape/shop.orders") {
		t.Errorf("want one waiting line naming shape/shop.orders, got:\n%s", logs.String())
	}
}

// TestStoredShapesSourceDB: a table named without a database takes the
// one the state topic describes it in.
func TestStoredShapesSourceDB(t *testing.T) {
	bare := []schema.TableSpec{{Source: "raw_records"}}
	tests := []struct {
		name  string
		specs []schema.TableSpec
		keys  []string
		want  string
		err   string
	}{
		{name: "named tables keep the default", specs: []schema.TableSpec{{Source: "shop.orders"}}, keys: []string{"shape/iot.raw_records"}, want: "source_db"},
		{name: "the one database", specs: bare, keys: []string{"shape/iot.raw_records", "shape/iot.other"}, want: "iot"},
		{name: "the default among several", specs: bare, keys: []string{"shape/iot.raw_records", "shape/source_db.raw_records"}, want: "source_db"},
		{name: "several", specs: bare, keys: []string{"shape/iot.raw_records", "shape/old.raw_records"}, err: "describes them in several (iot, old)"},
		{name: "none yet: waits until ctx ends", specs: bare, keys: []string{"shape/iot.raw_records_old"}, err: "waiting for their description"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kv := &fakeShapes{kv: map[string][]byte{}}
			for _, k := range tc.keys {
				kv.kv[k] = []byte("{}")
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a wait ends at once
			ss := storedShapes{kv: kv, log: slog.New(slog.DiscardHandler), poll: 0}
			got, err := ss.sourceDB(ctx, tc.specs, "source_db")
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error saying %q", got, err, tc.err)
				}
			case err != nil || got != tc.want:
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestStoreShapesOnlyChanges: a description equal to the stored one is
// not written again; a changed one is.
func TestStoreShapesOnlyChanges(t *testing.T) {
	kv := &fakeShapes{kv: map[string][]byte{}}
	name := schema.TableName{DB: "shop", Table: "orders"}
	rec := &recordingDescriber{seen: map[schema.TableName]schema.SourceShape{name: {Columns: []schema.Column{{Name: "id", DataType: "int"}}}}}
	tables := []*schema.Table{{Source: name}}
	puts := 0
	counting := &countingKV{fakeShapes: kv, puts: &puts}
	for range 2 {
		if err := storeShapes(context.Background(), counting, rec, tables, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	rec.seen[name] = schema.SourceShape{Columns: []schema.Column{{Name: "id", DataType: "bigint"}}}
	if err := storeShapes(context.Background(), counting, rec, tables, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if puts != 2 || !strings.Contains(string(kv.kv["shape/shop.orders"]), "bigint") {
		t.Fatalf("%d writes, stored %s; want 2 (the first, the change), bigint", puts, kv.kv["shape/shop.orders"])
	}
	if err := storeShapes(context.Background(), counting, rec, []*schema.Table{{Source: schema.TableName{DB: "shop", Table: "gone"}}}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "shop.gone") {
		t.Fatalf("a table not described: %v", err)
	}
}

type countingKV struct {
	*fakeShapes
	puts *int
}

func (c *countingKV) Put(ctx context.Context, key string, value []byte) error {
	*c.puts++
	return c.fakeShapes.Put(ctx, key, value)
}
