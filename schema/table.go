package schema

import "fmt"

// TableSpec is what a user declares for one table: the configuration file's
// entry, before it is checked against either database.
type TableSpec struct {
	// Source is the table read, "db.table", or "table" in the source DSN's
	// database.
	Source string
	// Target is the table written, "db.table", or "table" in the target
	// DSN's database; default: the source's table name in the target
	// DSN's database.
	Target string
	// ID is the integer column the backfill splits into keyset chunks;
	// default: the source's single-column integer primary key.
	ID string
	// Window is the DATE, DATETIME or TIMESTAMP column a window selects on;
	// "" reads the table whole.
	Window string
	// Key is the columns the target upserts and dedupes on, also the Kafka
	// record key; default: the target's primary key if all its columns
	// travel, else its one unique key whose columns all travel.
	Key []string
	// Columns says which columns travel and under what name.
	Columns ColumnsSpec
	// Transforms are each column's transforms, applied in order.
	Transforms map[string][]TransformSpec
	// Rules are each column's validation rules.
	Rules map[string]RuleSpec
	// Topic is the Kafka topic; default: <prefix>.<source db>.<source
	// table>, as Debezium names its topics.
	Topic string
}

// ColumnsSpec says which columns of the source travel to the target.
// Every column name in a TableSpec is the source's name.
type ColumnsSpec struct {
	Include []string          // only these travel; empty: every column
	Exclude []string          // these do not travel
	Rename  map[string]string // source name → target name
}

// TableName is a database and a table in it.
type TableName struct{ DB, Table string }

func (n TableName) String() string { return n.DB + "." + n.Table }

// Quoted is the name quoted for SQL: `db`.`table`.
func (n TableName) Quoted() (string, error) {
	db, err := QuoteIdent(n.DB)
	if err != nil {
		return "", err
	}
	t, err := QuoteIdent(n.Table)
	if err != nil {
		return "", err
	}
	return db + "." + t, nil
}

// Table is a TableSpec resolved against information_schema of both
// databases: what every stage reads.
type Table struct {
	Source, Target TableName
	// Columns are the columns that travel, in the source's column order.
	Columns []TableColumn
	// Dropped are the source's columns that do not travel, in its order.
	Dropped []string
	// ID is the source's id column; it need not travel.
	ID Column
	// Window is the source's window column; nil when the table is read
	// whole. It need not travel.
	Window *Column
	// Key indexes Columns: the key's columns, in key order.
	Key []int
	// KeyIndex names the target's unique index on the key's columns.
	KeyIndex string
	Topic    string
	// Create is set when the target table does not exist and was planned
	// (ResolveConfig.CreateMissing): Indexes are then its unique indexes,
	// PRIMARY first, as CreateTargetDDL writes them.
	Create  bool
	Indexes []Index
	// ExtraUnique are the target's unique indexes beyond the key whose
	// columns Sluice writes: a change of one key whose unique value
	// another key's row still holds in the target (its change not applied
	// yet, in another partition) lands on that row. Sluice warns about
	// them (check, consume); `migrate --config` never creates one.
	ExtraUnique []Index
}

// KeyColumns returns the key's columns, in key order.
func (t *Table) KeyColumns() []TableColumn {
	out := make([]TableColumn, len(t.Key))
	for i, k := range t.Key {
		out[i] = t.Columns[k]
	}
	return out
}

// TableColumn is one column that travels: its source and target columns,
// its transforms and its rules.
type TableColumn struct {
	Source     Column
	Target     Column // Target.Name is the column's name in the target
	Transforms []Transform
	Rules      []Rule
}

// Apply transforms one value of the column, then checks the result against
// the column's rules: the value the target stores, or a *RuleError.
func (c *TableColumn) Apply(v []byte, null bool) ([]byte, bool, error) {
	v, null, err := ApplyTransforms(c.Transforms, v, null)
	if err != nil {
		return nil, false, fmt.Errorf("column %s: %w", c.Source.Name, err)
	}
	if err := CheckRules(c.Rules, v, null); err != nil {
		return nil, false, err
	}
	return v, null, nil
}

// ConfigError is a table's configuration that cannot work: it names the
// table and the configuration field at fault. It is found before any row
// is read or written.
type ConfigError struct {
	Table string // the source table as configured, or tables[i] when it has none
	Field string // the field of the table's configuration: key, window, columns.rename.x, …
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("table %s: %s: %v", e.Table, e.Field, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }
