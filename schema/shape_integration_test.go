package schema_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationResolveFromStoredShape: a source table of many kinds,
// described from information_schema, stored as JSON and read back, resolves
// against the real target to the same table as from the source itself; and
// a target that cannot hold a stored column's type is refused as it is
// against the source.
func TestIntegrationResolveFromStoredShape(t *testing.T) {
	e := newResolveEnv(t)
	ctx := context.Background()
	cols := `(id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, at DATETIME(3) NOT NULL, at6 DATETIME(6),
		amount DECIMAL(65,30), flags BIT(5), kind ENUM('a','it''s',''), tags SET('x','y'), name VARCHAR(100) COLLATE utf8mb4_bin NOT NULL,
		raw VARBINARY(16), f DOUBLE, small TINYINT UNSIGNED NOT NULL, upper_name VARCHAR(100) AS (UPPER(name)) VIRTUAL,
		UNIQUE KEY name_at (name, at))`
	e.exec(t, "CREATE TABLE {src}.kinds "+cols+"; CREATE TABLE {dst}.kinds "+cols+"; CREATE TABLE {dst}.kinds_narrow "+
		"(id BIGINT UNSIGNED NOT NULL PRIMARY KEY, at DATETIME(3) NOT NULL, at6 DATETIME(6), amount DECIMAL(10,2), flags BIT(5), kind ENUM('a','it''s',''), tags SET('x','y'), name VARCHAR(100) NOT NULL, raw VARBINARY(16), f DOUBLE, small TINYINT UNSIGNED NOT NULL)")
	name := schema.TableName{DB: e.src, Table: "kinds"}
	read, err := schema.InformationSchema(e.db).Describe(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	stored := roundTrip(t, read)
	spec := schema.TableSpec{Source: e.src + ".kinds", Target: e.dst + ".kinds", Columns: schema.ColumnsSpec{Exclude: []string{"upper_name"}}}
	fromSource, err := schema.Resolve(ctx, spec, e.db, e.db, e.rc)
	if err != nil {
		t.Fatal(err)
	}
	fromStored, err := schema.ResolveFrom(ctx, spec, shapes{name: stored}, e.db, e.rc)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := fmt.Sprintf("%+v", fromSource), fmt.Sprintf("%+v", fromStored); a != b {
		t.Fatalf("resolved from the stored description:\n%s\nfrom the source:\n%s", b, a)
	}
	narrow := spec
	narrow.Target = e.dst + ".kinds_narrow"
	_, errSource := schema.Resolve(ctx, narrow, e.db, e.db, e.rc)
	_, errStored := schema.ResolveFrom(ctx, narrow, shapes{name: stored}, e.db, e.rc)
	if errSource == nil || errStored == nil || errSource.Error() != errStored.Error() {
		t.Fatalf("a target that cannot hold DECIMAL(65,30): from the source %v, from the stored description %v; want the same error", errSource, errStored)
	}
}
