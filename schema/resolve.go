package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ResolveConfig is what Resolve needs beside the spec and the databases.
type ResolveConfig struct {
	SourceDB    string // the source DSN's database, for a source named without one
	TargetDB    string // the target DSN's database, for a target named without one (or not named)
	TopicPrefix string // the prefix of default topic names, e.g. "sluice"
	// CreateMissing plans a target table that does not exist instead of
	// failing (sluice migrate): its columns are the traveling source
	// columns under their target names, fit for what the transforms make
	// of them, and Table.Create is set (ddl.go writes it).
	CreateMissing bool
}

// ResolveAll resolves every table of a configuration, after checking what
// concerns the list as a whole (two tables writing one target table, or
// producing to one topic) without a query.
func ResolveAll(ctx context.Context, specs []TableSpec, source, target Querier, rc ResolveConfig) ([]*Table, error) {
	return ResolveAllFrom(ctx, specs, InformationSchema(source), target, rc)
}

// ResolveAllFrom is ResolveAll with the sources described by source (a
// description the producers stored, say) instead of read from a server.
func ResolveAllFrom(ctx context.Context, specs []TableSpec, source Describer, target Querier, rc ResolveConfig) ([]*Table, error) {
	if len(specs) == 0 {
		return nil, errors.New("tables: none configured")
	}
	targets, topics := map[string]string{}, map[string]string{}
	for i, s := range specs {
		name := tableLabel(s, i)
		src, tgt, err := names(s, rc)
		if err != nil {
			return nil, err
		}
		if prev, ok := targets[strings.ToLower(tgt.String())]; ok {
			return nil, &ConfigError{Table: name, Field: "target", Err: fmt.Errorf("%s is also the target of table %s: two tables cannot write one target table", tgt, prev)}
		}
		targets[strings.ToLower(tgt.String())] = name
		topic := topicOf(s, src, rc)
		if prev, ok := topics[topic]; ok {
			return nil, &ConfigError{Table: name, Field: "topic", Err: fmt.Errorf("%s is also the topic of table %s: each table needs its own topic", topic, prev)}
		}
		topics[topic] = name
	}
	out := make([]*Table, 0, len(specs))
	for _, s := range specs {
		t, err := ResolveFrom(ctx, s, source, target, rc)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func tableLabel(s TableSpec, i int) string {
	if s.Source == "" {
		return fmt.Sprintf("tables[%d]", i)
	}
	return s.Source
}

// names returns a spec's source and target tables, defaults applied.
func names(s TableSpec, rc ResolveConfig) (src, tgt TableName, err error) {
	label := s.Source
	if s.Source == "" {
		return src, tgt, &ConfigError{Table: "(unnamed)", Field: "source", Err: errors.New(`required: "db.table" or "table"`)}
	}
	if src, err = splitName(s.Source, rc.SourceDB); err != nil {
		return src, tgt, &ConfigError{Table: label, Field: "source", Err: err}
	}
	t := s.Target
	if t == "" {
		t = src.Table
	}
	if tgt, err = splitName(t, rc.TargetDB); err != nil {
		return src, tgt, &ConfigError{Table: label, Field: "target", Err: err}
	}
	return src, tgt, nil
}

func splitName(s, defaultDB string) (TableName, error) {
	db, table, dotted := strings.Cut(s, ".")
	if !dotted {
		db, table = defaultDB, s
	}
	switch {
	case strings.Contains(table, "."):
		return TableName{}, fmt.Errorf("%q: use db.table", s)
	case db == "":
		return TableName{}, fmt.Errorf("%q names no database, and the DSN has none", s)
	case table == "":
		return TableName{}, fmt.Errorf("%q names no table", s)
	}
	for _, n := range []string{db, table} {
		if _, err := QuoteIdent(n); err != nil {
			return TableName{}, err
		}
	}
	return TableName{DB: db, Table: table}, nil
}

func topicOf(s TableSpec, src TableName, rc ResolveConfig) string {
	if s.Topic != "" {
		return s.Topic
	}
	prefix := rc.TopicPrefix
	if prefix == "" {
		prefix = "sluice"
	}
	return prefix + "." + src.DB + "." + src.Table
}

// Resolve checks a table's spec against information_schema of the source
// and the target and builds its Table. A nil target plans the target from
// the source, as CreateMissing does for a missing one: for a stage that
// only reads the source (a backfill, a tail) of a table whose key is given. It only reads information_schema: a
// bad configuration fails here, as a *ConfigError naming the table and the
// field, before any row is read or written.
func Resolve(ctx context.Context, spec TableSpec, source, target Querier, rc ResolveConfig) (*Table, error) {
	return ResolveFrom(ctx, spec, InformationSchema(source), target, rc)
}

// ResolveFrom is Resolve with the source table described by source: its
// information_schema (InformationSchema, what Resolve does), or the shape
// the producers stored, for a consumer that has no source DSN. Everything
// else, the checks of the source's types against the target's included,
// is the same.
func ResolveFrom(ctx context.Context, spec TableSpec, source Describer, target Querier, rc ResolveConfig) (*Table, error) {
	src, tgt, err := names(spec, rc)
	if err != nil {
		return nil, err
	}
	r := &resolver{spec: spec, label: spec.Source}
	t := &Table{Source: src, Target: tgt, Topic: topicOf(spec, src, rc)}
	shape, err := source.Describe(ctx, src)
	var absent *absentError
	if errors.As(err, &absent) {
		return nil, r.fail("source", absent.err)
	}
	if err != nil {
		return nil, err
	}
	if err := shape.Check(); err != nil {
		return nil, fmt.Errorf("source %s: %w", src, err)
	}
	missing := target == nil // no target to read: plan it from the source
	if !missing {
		if err := tableExists(ctx, target, tgt); err != nil {
			if !rc.CreateMissing || !errors.Is(err, errNoTable) {
				return nil, r.fail("target", fmt.Errorf("%w (`sluice migrate --config` creates it)", err))
			}
			missing = true
		}
	}
	r.srcCols = shape.Columns
	srcIdx := shape.Indexes
	var tgtIdx []Index
	if missing {
		r.tgtCols, tgtIdx = r.plannedTarget(srcIdx)
		t.Create, t.Indexes = true, tgtIdx
	} else {
		if r.tgtCols, err = ReadColumns(ctx, target, tgt.DB, tgt.Table); err != nil {
			return nil, err
		}
		if tgtIdx, err = ReadUniqueIndexes(ctx, target, tgt.DB, tgt.Table); err != nil {
			return nil, err
		}
	}
	if err := r.columns(t); err != nil {
		return nil, err
	}
	if err := r.id(t, srcIdx); err != nil {
		return nil, err
	}
	if err := r.window(t); err != nil {
		return nil, err
	}
	if err := r.key(t, tgtIdx); err != nil {
		return nil, err
	}
	if err := r.keyNotNull(t); err != nil {
		return nil, err
	}
	if !missing {
		t.ExtraUnique = extraUnique(t, tgtIdx)
	}
	return t, nil
}

// tableExists says which table is missing, apart from a failed query.
func tableExists(ctx context.Context, q Querier, n TableName) error {
	rows, err := q.QueryContext(ctx, `SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, n.DB, n.Table)
	if err != nil {
		return fmt.Errorf("look up %s: %w", n, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("look up %s: %w", n, err)
		}
		return fmt.Errorf("%s %w (or the user may not see it)", n, errNoTable)
	}
	return nil
}

// errNoTable is a table information_schema does not list.
var errNoTable = errors.New("does not exist")

// resolver holds one spec's resolution under way.
type resolver struct {
	spec             TableSpec
	label            string
	srcCols, tgtCols []Column
	travel           map[string]int // lower-case source name → index in Table.Columns
}

func (r *resolver) fail(field string, err error) error {
	return &ConfigError{Table: r.label, Field: field, Err: err}
}

func (r *resolver) failf(field, format string, a ...any) error {
	return r.fail(field, fmt.Errorf(format, a...))
}

// sourceCol finds a source column by name, as the server does: ignoring
// case.
func (r *resolver) sourceCol(name string) (Column, bool) {
	for _, c := range r.srcCols {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return Column{}, false
}

// unknown is the error for a name that is not a source column; it points
// out a target name used where the source's is expected.
func (r *resolver) unknown(field, name string) error {
	for src, to := range r.spec.Columns.Rename {
		if strings.EqualFold(to, name) {
			return r.failf(field, "column %q is not in the source %s: it is the target name of %q, and columns are named by their source names", name, r.spec.Source, src)
		}
	}
	return r.failf(field, "column %q is not in the source (its columns: %s)", name, strings.Join(colNames(r.srcCols), ", "))
}

func colNames(cols []Column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
}

// sortedKeys returns a map's keys in order, so that of two faults the same
// one is always reported.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// columns decides which columns travel and checks each against its target
// column, with its transforms and rules.
func (r *resolver) columns(t *Table) error {
	cs := r.spec.Columns
	if len(cs.Include) > 0 && len(cs.Exclude) > 0 {
		return r.failf("columns", "give include or exclude, not both")
	}
	skip := map[string]bool{}
	for _, n := range cs.Exclude {
		if _, ok := r.sourceCol(n); !ok {
			return r.unknown("columns.exclude", n)
		}
		skip[strings.ToLower(n)] = true
	}
	if len(cs.Include) > 0 {
		for _, c := range r.srcCols {
			skip[strings.ToLower(c.Name)] = true
		}
		for _, n := range cs.Include {
			if _, ok := r.sourceCol(n); !ok {
				return r.unknown("columns.include", n)
			}
			delete(skip, strings.ToLower(n))
		}
	}
	for _, n := range sortedKeys(cs.Rename) {
		if _, ok := r.sourceCol(n); !ok {
			return r.unknown("columns.rename."+n, n)
		}
		if skip[strings.ToLower(n)] {
			return r.failf("columns.rename."+n, "column %q does not travel (see columns.include/exclude)", n)
		}
	}
	for _, n := range sortedKeys(r.spec.Transforms) {
		if _, ok := r.sourceCol(n); !ok {
			return r.unknown("transforms."+n, n)
		}
		if skip[strings.ToLower(n)] {
			return r.failf("transforms."+n, "column %q does not travel (see columns.include/exclude): a transform on it would do nothing", n)
		}
	}
	for _, n := range sortedKeys(r.spec.Rules) {
		if _, ok := r.sourceCol(n); !ok {
			return r.unknown("rules."+n, n)
		}
		if skip[strings.ToLower(n)] {
			return r.failf("rules."+n, "column %q does not travel (see columns.include/exclude): a rule on it would check nothing", n)
		}
	}
	lineage := map[string]bool{} // what the table writer writes itself (source_id is the fixed writer's, and a rename may fill it)
	for _, l := range tableLineage {
		lineage[l.name] = true
	}
	r.travel = map[string]int{}
	written := map[string]string{} // lower-case target name → source name
	for _, sc := range r.srcCols {
		if skip[strings.ToLower(sc.Name)] {
			t.Dropped = append(t.Dropped, sc.Name)
			continue
		}
		tname := sc.Name
		for from, to := range cs.Rename {
			if strings.EqualFold(from, sc.Name) {
				tname = to
			}
		}
		field := "columns"
		if tname != sc.Name {
			field = "columns.rename." + sc.Name
		}
		if prev, ok := written[strings.ToLower(tname)]; ok {
			return r.failf(field, "columns %q and %q both write target column %s.%s", prev, sc.Name, t.Target, tname)
		}
		written[strings.ToLower(tname)] = sc.Name
		if err := CheckType(sc); err != nil {
			return r.failf(field, "%v in the source %s; exclude the column (columns.exclude) to sync the table", err, r.spec.Source)
		}
		if lineage[strings.ToLower(tname)] {
			return r.failf(field, "column %q: target column %s is a lineage column Sluice writes itself; rename or exclude the column", sc.Name, tname)
		}
		var tc Column
		found := false
		for _, c := range r.tgtCols {
			if strings.EqualFold(c.Name, tname) {
				tc, found = c, true
			}
		}
		if !found {
			return r.failf(field, "column %q: target %s has no column %s (add it, or use columns.rename or columns.exclude)", sc.Name, t.Target, tname)
		}
		if tc.Generated {
			return r.failf(field, "column %q: target column %s.%s is generated and cannot be written; exclude the column", sc.Name, t.Target, tc.Name)
		}
		col, err := r.column(t, sc, tc)
		if err != nil {
			return err
		}
		r.travel[strings.ToLower(sc.Name)] = len(t.Columns)
		t.Columns = append(t.Columns, col)
	}
	if len(t.Columns) == 0 {
		return r.failf("columns", "no column travels")
	}
	return nil
}

// column builds one traveling column: its transforms, what they make of
// the source's values, whether the target column holds that, and its rules.
func (r *resolver) column(t *Table, sc, tc Column) (TableColumn, error) {
	col := TableColumn{Source: sc, Target: tc}
	specs := specFor(r.spec.Transforms, sc.Name)
	rules := specFor(r.spec.Rules, sc.Name)
	// shape is what the values look like after each transform, for the
	// type check: hash makes 64 ASCII hex digits of anything.
	shape := sc
	constant := ""
	isConstant, alwaysNull := false, false
	for i, ts := range specs {
		field := fmt.Sprintf("transforms.%s[%d]", sc.Name, i)
		tr, err := NewTransform(ts)
		if err != nil {
			return col, r.fail(field, err)
		}
		switch ts.Name {
		case TransformUpper, TransformLower, TransformTrim, TransformMask:
			if !IsText(shape) && !isConstant {
				return col, r.failf(field, "%s applies to character columns (CHAR, VARCHAR, TEXT); %q is %s", ts.Name, sc.Name, sc.ColumnType)
			}
			if isConstant {
				v, _, _ := tr.Apply([]byte(constant), false)
				constant = string(v)
			}
		case TransformHash:
			shape = Column{Name: sc.Name, DataType: "char", ColumnType: "char(64) (a hash)", Length: 64, Charset: "ascii", Nullable: shape.Nullable && !isConstant}
			if isConstant {
				v, _, _ := tr.Apply([]byte(constant), false)
				constant = string(v)
			}
		case TransformNull:
			shape.Nullable, isConstant, alwaysNull = true, false, true
		case TransformConstant:
			shape.Nullable, isConstant, alwaysNull, constant = false, true, false, ts.Value
		}
		col.Transforms = append(col.Transforms, tr)
	}
	nullOnly := alwaysNull
	switch {
	case isConstant:
		if why := constantFits(tc, constant); why != "" {
			return col, r.failf(fmt.Sprintf("transforms.%s", sc.Name), "target column %s.%s: %s", t.Target, tc.Name, why)
		}
	case nullOnly:
	default:
		if why := canHold(tc, shape); why != "" {
			return col, r.failf("columns."+sc.Name, "column %q: target type %s (%s.%s) cannot hold source type %s: %s",
				sc.Name, tc.ColumnType, t.Target, tc.Name, shape.ColumnType, why)
		}
	}
	if shape.Nullable && !tc.Nullable && !rules.Required {
		what := "the source column is nullable"
		if nullOnly {
			what = "the transform null makes every value NULL"
		}
		return col, r.failf("columns."+sc.Name, "column %q: target column %s.%s is NOT NULL and %s (add rules.%s.required to dead-letter NULLs, or make the target nullable)",
			sc.Name, t.Target, tc.Name, what, sc.Name)
	}
	if nullOnly && rules.Required {
		return col, r.failf("rules."+sc.Name+".required", "column %q: its transforms make every value NULL, so required refuses every value", sc.Name)
	}
	var err error
	if col.Rules, err = r.rules(t, sc, tc, rules); err != nil {
		return col, err
	}
	return col, nil
}

// specFor finds a column's entry in a map keyed by source column name,
// ignoring case.
func specFor[V any](m map[string]V, name string) V {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	var zero V
	return zero
}

// rules builds a column's rules: the configured ones, then the implicit
// ones of its target type (its size, the years of DATE and DATETIME).
func (r *resolver) rules(t *Table, sc, tc Column, rs RuleSpec) ([]Rule, error) {
	var out []Rule
	field := "rules." + sc.Name
	if rs.Required {
		out = append(out, requiredRule())
	}
	if rs.MaxLength < 0 {
		return nil, r.failf(field+".max_length", "%d: must not be negative", rs.MaxLength)
	}
	if rs.MaxLength > 0 {
		switch {
		case IsText(tc):
			out = append(out, maxLengthRule(rs.MaxLength, false))
		case IsBinary(tc):
			out = append(out, maxLengthRule(rs.MaxLength, true))
		default:
			return nil, r.failf(field+".max_length", "column %q: max_length applies to character and binary columns; target column %s.%s is %s", sc.Name, t.Target, tc.Name, tc.ColumnType)
		}
	}
	for _, b := range []struct{ name, text string }{{RuleMin, rs.Min}, {RuleMax, rs.Max}} {
		if b.text == "" {
			continue
		}
		if !IsTime(tc) {
			return nil, r.failf(field+"."+b.name, "column %q: a time range applies to DATE, DATETIME and TIMESTAMP columns; target column %s.%s is %s", sc.Name, t.Target, tc.Name, tc.ColumnType)
		}
		bound, ok := parseDateTimeText([]byte(b.text))
		if !ok {
			return nil, r.failf(field+"."+b.name, `%q is not a time: use "2006-01-02" or "2006-01-02 15:04:05[.ffffff]"`, b.text)
		}
		out = append(out, timeRule(b.name, b.text, bound))
	}
	// implicit: what the server would refuse or truncate
	switch {
	case IsText(tc):
		if n, ok := textBytes[tc.DataType]; ok {
			out = append(out, implicit(maxLengthRule(n, true)))
		} else {
			out = append(out, implicit(maxLengthRule(tc.Length, false)))
		}
	case IsBinary(tc):
		out = append(out, implicit(maxLengthRule(maxBytes(tc), true)))
	case tc.DataType == "date" || tc.DataType == "datetime":
		out = append(out, implicit(timeRule(RuleMin, "1000-01-01", minDateTime)), implicit(timeRule(RuleMax, "9999-12-31 23:59:59.999999", maxDateTime)))
	}
	for i := range out {
		out[i].Table, out[i].Column = t.Source.String(), sc.Name
	}
	return out, nil
}

func implicit(r Rule) Rule { r.Implicit = true; return r }

// id resolves the id column: declared, or the source's single-column
// integer primary key.
func (r *resolver) id(t *Table, idx []Index) error {
	if r.spec.ID != "" {
		c, ok := r.sourceCol(r.spec.ID)
		if !ok {
			return r.unknown("id", r.spec.ID)
		}
		if !IsInteger(c) {
			return r.failf("id", "column %q is %s, not an integer type: the backfill splits the id into ranges", c.Name, c.ColumnType)
		}
		t.ID = c
		return nil
	}
	for _, i := range idx {
		if i.Name != "PRIMARY" {
			continue
		}
		if len(i.Columns) == 1 {
			if c, ok := r.sourceCol(i.Columns[0]); ok && IsInteger(c) {
				t.ID = c
				return nil
			}
		}
		return r.failf("id", "not set, and the source's primary key (%s) is not one integer column: name the integer column to split the backfill on", strings.Join(i.Columns, ", "))
	}
	return r.failf("id", "not set, and the source has no primary key: name the integer column to split the backfill on")
}

// window resolves the window column, which must hold times.
func (r *resolver) window(t *Table) error {
	if r.spec.Window == "" {
		return nil
	}
	c, ok := r.sourceCol(r.spec.Window)
	if !ok {
		return r.unknown("window", r.spec.Window)
	}
	if !IsTime(c) {
		return r.failf("window", "column %q is %s, not DATE, DATETIME or TIMESTAMP", c.Name, c.ColumnType)
	}
	t.Window = &c
	return nil
}

// key resolves the key: declared (each column traveling, together exactly
// the columns of a unique index of the target), or the target's primary
// key, or its one unique key, whose columns all travel.
func (r *resolver) key(t *Table, idx []Index) error {
	byTarget := map[string]int{} // lower-case target name → index in t.Columns
	for i, c := range t.Columns {
		byTarget[strings.ToLower(c.Target.Name)] = i
	}
	describe := func(list []Index) string {
		var parts []string
		for _, i := range list {
			parts = append(parts, fmt.Sprintf("%s (%s)", i.Name, strings.Join(i.Columns, ", ")))
		}
		if len(parts) == 0 {
			return "none"
		}
		return strings.Join(parts, ", ")
	}
	if len(r.spec.Key) > 0 {
		var targets []string
		seen := map[int]bool{}
		for _, n := range r.spec.Key {
			if _, ok := r.sourceCol(n); !ok {
				return r.unknown("key", n)
			}
			i, ok := r.travel[strings.ToLower(n)]
			if !ok {
				return r.failf("key", "column %q does not travel (see columns.include/exclude)", n)
			}
			if seen[i] {
				return r.failf("key", "column %q is named twice", n)
			}
			seen[i] = true
			t.Key = append(t.Key, i)
			targets = append(targets, t.Columns[i].Target.Name)
		}
		for _, i := range idx {
			if sameColumns(i.Columns, targets) {
				t.KeyIndex = i.Name
				return nil
			}
		}
		return r.failf("key", "(%s) is not unique in the target %s: no unique index there has exactly these columns (its unique indexes: %s)",
			strings.Join(targets, ", "), t.Target, describe(idx))
	}
	var candidates []Index
	for _, i := range idx {
		all := true
		for _, c := range i.Columns {
			if _, ok := byTarget[strings.ToLower(c)]; !ok {
				all = false
			}
		}
		if !all {
			continue
		}
		if i.Name == "PRIMARY" {
			candidates = []Index{i}
			break
		}
		candidates = append(candidates, i)
	}
	switch len(candidates) {
	case 0:
		return r.failf("key", "not set, and no unique index of the target %s has all its columns traveling (its unique indexes: %s)", t.Target, describe(idx))
	case 1:
		for _, c := range candidates[0].Columns {
			t.Key = append(t.Key, byTarget[strings.ToLower(c)])
		}
		t.KeyIndex = candidates[0].Name
		return nil
	}
	return r.failf("key", "not set, and the target %s has several unique keys whose columns all travel: %s; choose one", t.Target, describe(candidates))
}

// keyNotNull refuses a key with a column the target lets be NULL: a unique
// index holds any number of rows with a NULL there, so such a key names no
// single row. Its upserts would insert copies and its deletes match
// nothing.
func (r *resolver) keyNotNull(t *Table) error {
	for _, k := range t.Key {
		if c := t.Columns[k]; c.Target.Nullable {
			return r.failf("key", "column %q is nullable in the target %s (%s.%s): a unique index lets any number of rows hold NULL there, so a NULL key names no row (its changes would insert copies, its deletes match nothing); make the column NOT NULL there, or key the table on NOT NULL columns",
				c.Source.Name, t.Target, t.Target, c.Target.Name)
		}
	}
	return nil
}

func sameColumns(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y string) bool { return strings.EqualFold(x, y) }) {
			return false
		}
	}
	return true
}

// extraUnique lists the target's unique indexes beyond the key whose
// columns are all written (ddl.go's CreateTargetDDL explains the risk).
func extraUnique(t *Table, idx []Index) []Index {
	written := map[string]bool{}
	for _, c := range t.Columns {
		written[strings.ToLower(c.Target.Name)] = true
	}
	key := make([]string, len(t.Key))
	for i, k := range t.Key {
		key[i] = t.Columns[k].Target.Name
	}
	var out []Index
	for _, i := range idx {
		all := true
		for _, c := range i.Columns {
			all = all && written[strings.ToLower(c)]
		}
		if all && !sameColumns(i.Columns, key) {
			out = append(out, i)
		}
	}
	return out
}
