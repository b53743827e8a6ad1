package consumer

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestIntegrationTableWriterKeyMoveToTheSameTargetKey: an update that
// changes a key column only in a way the target does not see (here 'p1' to
// 'P1', under the key's upper transform; a case-only change under a _ci
// collation is the same) is carried by the tail as a delete of the old key
// and a create of the new one, with the same version, in two partitions.
// Whichever the consumer applies first, the row must stay: at one version
// (one binlog event, where a key is only ever vacated before it is taken) a
// create or update wins over a delete.
func TestIntegrationTableWriterKeyMoveToTheSameTargetKey(t *testing.T) {
	for _, order := range []string{"create first", "delete first", "one batch"} {
		t.Run(order, func(t *testing.T) {
			e := newGWEnv(t)
			e.exec(`INSERT INTO ` + e.src + `.mixed (id, site, day, seq, name) VALUES (1, 'p1', '2024-01-15', 1, 'old')`)
			before := e.image(1)
			e.write(e.change(schema.OpCreate, nil, before, 100))
			e.exec(`UPDATE ` + e.src + `.mixed SET site = 'P1', name = 'new' WHERE id = 1`)
			after := e.image(1)
			del, cre := e.change(schema.OpDelete, before, nil, 200), e.change(schema.OpCreate, nil, after, 200)
			switch order {
			case "create first":
				e.write(cre)
				e.write(del)
			case "delete first":
				e.write(del)
				e.write(cre)
			default:
				e.write(cre, del)
			}
			got := e.target()
			if len(got) != 1 {
				t.Fatalf("target holds %d rows, want the moved row", len(got))
			}
			e.sameRow("the moved row", got[0].vals, e.want(after))
			if got[0].version.Int64 != gwVer(200) {
				t.Errorf("source_version %d, want %d", got[0].version.Int64, gwVer(200))
			}
		})
	}
}

// TestIntegrationKeyMoveToTheSameTargetKey is the IoT table's case of the
// test above: device_type changes only in case ('dev' to 'DEV'), which the
// target's utf8mb4_general_ci key does not tell apart. The delete of the
// old key and the create of the new one, at one version and in two
// partitions, keep the row in either order, through every write path.
func TestIntegrationKeyMoveToTheSameTargetKey(t *testing.T) {
	db, _ := servers(t)
	ctx := t.Context()
	for _, order := range []string{"create first", "delete first"} {
		for _, upsertOnly := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, upsert only %t", order, upsertOnly), func(t *testing.T) {
				database := fmt.Sprintf("it_samever_%d", time.Now().UnixNano()%1e9)
				if err := schema.MigrateTarget(ctx, db, database); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + database) })
				w, err := newWriter(ctx, db, database, schema.TargetTable, 3, 10*time.Millisecond, NewMetrics(nil))
				if err != nil {
					t.Fatal(err)
				}
				if upsertOnly {
					w.lookupOK, w.loadOK, w.binOK = false, false, false
				}
				at := func(pos uint64) schema.Source { return schema.Source{File: "mysql-bin.000003", Pos: pos} }
				old, moved := testRow(0, "dev"), testRow(0, "DEV")
				moved.Message.String = "moved"
				write := func(evs ...schema.Event) {
					t.Helper()
					b := newBatch(100, time.Hour)
					for i := range evs {
						b.add(&kgo.Record{Topic: "t", Offset: int64(i)}, &evs[i], time.Now())
					}
					b.final()
					if _, err := w.write(ctx, b.items); err != nil {
						t.Fatal(err)
					}
				}
				write(schema.Event{Op: schema.OpCreate, After: old, Source: at(100)})
				del := schema.Event{Op: schema.OpDelete, Before: old, Source: at(200)}
				cre := schema.Event{Op: schema.OpCreate, After: moved, Source: at(200)}
				if order == "create first" {
					write(cre)
					write(del)
				} else {
					write(del)
					write(cre)
				}
				var device, msg string
				var ver uint64
				err = db.QueryRowContext(ctx, "SELECT device_type, message, source_version FROM "+database+".records").Scan(&device, &msg, &ver)
				want, _ := at(200).Version()
				// The key's bytes stay 'dev' when the create came first: an
				// upsert does not rewrite the key columns of the row it
				// lands on (the README says so). What must hold is the row.
				if err != nil || !strings.EqualFold(device, "DEV") || msg != "moved" || ver != want {
					t.Errorf("target row: %q %q version %d, err %v; want dev/DEV, moved, at version %d", device, msg, ver, err, want)
				}
			})
		}
	}
}
