package backfill_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/sluice-dev/sluice/backfill"
)

// The planner walks [min, max] of the window's ids in keyset chunks, asking
// for the next existing id before each one, so a gap in the ids costs one
// lookup, not a chunk per size ids.
func ExamplePlanner() {
	ids := []uint64{1, 2, 3, 9, 10, 11, 12, 25, 1000, 1001}
	nextID := func(_ context.Context, from uint64) (uint64, bool, error) {
		i, _ := slices.BinarySearch(ids, from)
		if i == len(ids) {
			return 0, false, nil
		}
		return ids[i], true, nil
	}
	p := backfill.NewPlanner(1, 1001, 10, nextID)
	for {
		c, skipped, ok, _ := p.Next(context.Background())
		if !ok {
			break
		}
		fmt.Println(c, "span", c.Span(), "after skipping", skipped)
	}
	// Output:
	// id (0,10] span 10 after skipping 0
	// id (10,20] span 10 after skipping 0
	// id (24,34] span 10 after skipping 4
	// id (999,1001] span 2 after skipping 965
}

// A range starting at id 0 cannot have an exclusive lower bound of -1, so its
// first chunk includes its lower bound.
func ExamplePlanner_fromZero() {
	dense := func(_ context.Context, from uint64) (uint64, bool, error) { return from, true, nil }
	p := backfill.NewPlanner(0, 25, 10, dense)
	for {
		c, _, ok, _ := p.Next(context.Background())
		if !ok {
			break
		}
		fmt.Println(c, "span", c.Span())
	}
	// Output:
	// id [0,9] span 10
	// id (9,19] span 10
	// id (19,25] span 6
}

// Saved progress is the acknowledged chunks' id ranges, coalesced: chunks
// acknowledged out of order still make one range once the holes fill.
func ExampleCoalesce() {
	acked := []backfill.Range{{Lo: 21, Hi: 30}, {Lo: 1, Hi: 10}, {Lo: 41, Hi: 50}, {Lo: 11, Hi: 20}}
	fmt.Println(backfill.Coalesce(acked))
	// Output: [id [1,30] id [41,50]]
}
