package backfill_test

import (
	"fmt"

	"github.com/sluice-dev/sluice/backfill"
)

func ExamplePlan() {
	for _, c := range backfill.Plan(1, 25, 10) {
		fmt.Println(c, "span", c.Span())
	}
	// Output:
	// id (0,10] span 10
	// id (10,20] span 10
	// id (20,25] span 5
}

// A range starting at id 0 cannot have an exclusive lower bound of -1, so its
// first chunk includes its lower bound.
func ExamplePlan_fromZero() {
	for _, c := range backfill.Plan(0, 25, 10) {
		fmt.Println(c, "span", c.Span())
	}
	// Output:
	// id [0,9] span 10
	// id (9,19] span 10
	// id (19,25] span 6
}

func ExamplePlan_empty() {
	fmt.Println(len(backfill.Plan(10, 9, 100)))
	// Output: 0
}

// Saved progress is the acknowledged chunks' id ranges, coalesced: chunks
// acknowledged out of order still make one range once the holes fill.
func ExampleCoalesce() {
	acked := []backfill.Range{{Lo: 21, Hi: 30}, {Lo: 1, Hi: 10}, {Lo: 41, Hi: 50}, {Lo: 11, Hi: 20}}
	fmt.Println(backfill.Coalesce(acked))
	// Output: [id [1,30] id [41,50]]
}
