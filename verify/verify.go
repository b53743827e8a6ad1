// Package verify reconciles the source and the target of a resolved table
// (RunTable) for one time window, or whole when the table has no traveling
// window column.
//
// The window is cut into time slices: equal ones (TableConfig.Slices), or
// as many as hold about TableConfig.ChunkRows source rows each. For every
// slice both sides are read (every traveling column) and summarised as a
// row count and an order-independent checksum of each row's key and
// content, the source side through the table's transforms and rules and
// both sides in the target column's canonical form. Slicing by time rather
// than by id works for any target, including rows loaded by the earlier job
// or by Debezium.
//
// For the first slice that differs, the rows of both sides are compared key
// by key, to name the keys missing from the target, extra in it, or altered
// (and the column that differs).
package verify

import "time"

// Slice is one compared time slice.
type Slice struct {
	Start, End             time.Time
	SourceRows, TargetRows int
	SourceSum, TargetSum   uint64
}

// Match reports whether both sides agree.
func (s Slice) Match() bool { return s.SourceRows == s.TargetRows && s.SourceSum == s.TargetSum }
