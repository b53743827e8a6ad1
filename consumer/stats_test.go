package consumer

import "testing"

func TestStatsAdd(t *testing.T) {
	a := Stats{Records: 1, Upserted: 2, Inserted: 3, Merged: 4, Unchanged: 5, Deleted: 6, Tombstoned: 7, Batches: 8, Dead: 9}
	var sum Stats
	sum.Add(a)
	sum.Add(a)
	if want := (Stats{Records: 2, Upserted: 4, Inserted: 6, Merged: 8, Unchanged: 10, Deleted: 12, Tombstoned: 14, Batches: 16, Dead: 18}); sum != want {
		t.Errorf("two members' Stats added = %+v, want %+v", sum, want)
	}
}
