package consumer

import (
	"testing"

	"github.com/sluice-dev/sluice/schema"
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
