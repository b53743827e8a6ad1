package schema

import (
	"context"
	"errors"
)

// SourceShape is what resolving a table reads of its source: the columns,
// as ReadColumns returns them (their types decide how a record's values
// decode: DATETIME(3) as epoch milliseconds, DECIMAL by its scale, …), and
// the unique indexes (ReadUniqueIndexes: an id not configured is the
// primary key's). The producers keep it in the state topic, so that a
// consumer given no source DSN resolves its tables from it exactly as it
// would from the source (ResolveFrom).
type SourceShape struct {
	Columns []Column `json:"columns"`
	Indexes []Index  `json:"indexes"`
}

// Describer describes source tables to ResolveFrom: the source's
// information_schema (InformationSchema), or a description the producers
// stored.
type Describer interface {
	// Describe returns the shape of table t of the source.
	Describe(ctx context.Context, t TableName) (SourceShape, error)
}

// InformationSchema is the Describer that reads q's information_schema: what
// Resolve reads.
func InformationSchema(q Querier) Describer { return querySource{q} }

type querySource struct{ q Querier }

func (s querySource) Describe(ctx context.Context, t TableName) (SourceShape, error) {
	if err := tableExists(ctx, s.q, t); err != nil {
		return SourceShape{}, &absentError{err}
	}
	cols, err := ReadColumns(ctx, s.q, t.DB, t.Table)
	if err != nil {
		return SourceShape{}, err
	}
	idx, err := ReadUniqueIndexes(ctx, s.q, t.DB, t.Table)
	if err != nil {
		return SourceShape{}, err
	}
	return SourceShape{Columns: cols, Indexes: idx}, nil
}

// absentError is a source table that information_schema does not show (or
// could not be asked about): the configuration's fault, reported as such
// (a *ConfigError on the table's source field).
type absentError struct{ err error }

func (e *absentError) Error() string { return e.err.Error() }
func (e *absentError) Unwrap() error { return e.err }

// errEmptyShape is a description without columns: no table has none.
var errEmptyShape = errors.New("the description has no column")

// Check says whether s could describe a table: a stored description that
// is not one fails here rather than as a confusing resolve error.
func (s SourceShape) Check() error {
	if len(s.Columns) == 0 {
		return errEmptyShape
	}
	return nil
}
