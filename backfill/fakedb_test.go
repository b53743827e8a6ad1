package backfill

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// fakeSource is a database/sql driver that answers the backfill's three
// queries of testTable (the IoT table: tableQueries builds them) from a
// sorted list of ids, all inside the window, and fails chunk reads with
// scripted errors. It is the fake at the boundary the backfill
// really has, database/sql, so Run's retry and resume logic is tested
// without a server.
type fakeSource struct {
	mu       sync.Mutex
	ids      []uint64
	readErrs map[uint64][]error // by chunk upper bound: errors of its successive reads
	reads    map[uint64]int     // by chunk upper bound: reads tried
}

func newFakeSource(ids ...uint64) *fakeSource {
	slices.Sort(ids)
	return &fakeSource{ids: ids, readErrs: map[uint64][]error{}, reads: map[uint64]int{}}
}

// idRange returns the ids 1..n.
func idRange(lo, hi uint64) []uint64 {
	var ids []uint64
	for id := lo; id <= hi; id++ {
		ids = append(ids, id)
	}
	return ids
}

func (f *fakeSource) db() *sql.DB { return sql.OpenDB(f) }

func (f *fakeSource) Connect(context.Context) (driver.Conn, error) { return &fakeConn{f: f}, nil }
func (f *fakeSource) Driver() driver.Driver                        { return fakeDriver{} }

type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) { return nil, errors.New("use the connector") }

type fakeConn struct{ f *fakeSource }

func (c *fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fake: no prepare") }
func (c *fakeConn) Close() error                        { return nil }
func (c *fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("fake: no transactions") }

func argID(v driver.Value) uint64 {
	switch x := v.(type) {
	case int64:
		return uint64(x)
	case uint64:
		return x
	}
	panic(fmt.Sprintf("fake: id argument %T", v))
}

func (c *fakeConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case strings.HasPrefix(q, "SHOW"):
		return nil, errors.New("fake: no binlog")
	case strings.HasPrefix(q, "SELECT MIN(`id`), MAX(`id`) FROM `source_db`.`raw_records` WHERE `timestamp` >= ? AND `timestamp` < ?"):
		if len(f.ids) == 0 {
			return &fakeRows{cols: []string{"min", "max"}, rows: [][]driver.Value{{nil, nil}}}, nil
		}
		return &fakeRows{cols: []string{"min", "max"}, rows: [][]driver.Value{{
			strconv.FormatUint(f.ids[0], 10), strconv.FormatUint(f.ids[len(f.ids)-1], 10)}}}, nil
	case strings.HasPrefix(q, "SELECT MIN(`id`) FROM `source_db`.`raw_records` WHERE `id` >= ?"):
		from := argID(args[0].Value)
		i, _ := slices.BinarySearch(f.ids, from)
		if i == len(f.ids) {
			return &fakeRows{cols: []string{"min"}, rows: [][]driver.Value{{nil}}}, nil
		}
		return &fakeRows{cols: []string{"min"}, rows: [][]driver.Value{{strconv.FormatUint(f.ids[i], 10)}}}, nil
	case strings.HasPrefix(q, "SELECT `id`, `date`, `timestamp`, `device_type`, `event_type`, `message`, `created_at`, `updated_at` FROM `source_db`.`raw_records` WHERE `id` "):
		lo, hi := argID(args[0].Value), argID(args[1].Value)
		if !strings.Contains(q, "`id` >= ?") {
			lo++
		}
		n := f.reads[hi]
		f.reads[hi]++
		if errs := f.readErrs[hi]; n < len(errs) && errs[n] != nil {
			return nil, errs[n]
		}
		ts := time.Date(2025, 10, 1, 1, 0, 0, 0, time.UTC)
		r := &fakeRows{cols: []string{"id", "date", "timestamp", "device_type", "event_type", "message", "created_at", "updated_at"}}
		for _, id := range f.ids {
			if id >= lo && id <= hi {
				r.rows = append(r.rows, []driver.Value{strconv.FormatUint(id, 10), ts.Truncate(24 * time.Hour), ts.Add(time.Duration(id) * time.Second),
					"meter-" + strconv.FormatUint(id, 10), "status", "m", nil, nil})
			}
		}
		return r, nil
	}
	return nil, fmt.Errorf("fake: unexpected query %q", q)
}

type fakeRows struct {
	cols []string
	rows [][]driver.Value
}

func (r *fakeRows) Columns() []string { return r.cols }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}

// testTable is the IoT source table, source_db.raw_records, resolved as the
// built-in configuration resolves it: id the keyset, timestamp the window,
// the eight columns the fake source returns travelling in its order.
func testTable() *schema.Table {
	col := func(name, dataType string) schema.Column { return schema.Column{Name: name, DataType: dataType} }
	id, ts := col("id", "bigint"), col("timestamp", "datetime")
	id.Unsigned = true
	t := &schema.Table{Source: schema.TableName{DB: "source_db", Table: "raw_records"}, ID: id, Window: &ts}
	for _, c := range []schema.Column{id, col("date", "date"), ts, col("device_type", "varchar"), col("event_type", "varchar"),
		col("message", "text"), col("created_at", "timestamp"), col("updated_at", "timestamp")} {
		t.Columns = append(t.Columns, schema.TableColumn{Source: c, Target: c})
	}
	return t
}

// changeID is the id of a change of the IoT table: its first column.
func changeID(c schema.Change) uint64 {
	id, err := strconv.ParseUint(string(c.After[0].B), 10, 64)
	if err != nil {
		panic(fmt.Sprintf("change with id %q: %v", c.After[0].B, err))
	}
	return id
}
