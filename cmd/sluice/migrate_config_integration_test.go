package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIntegrationMigrateConfigCreatesTargets: `sluice migrate --config`
// creates a missing target from its source's columns (renamed, excluded,
// hashed), with the lineage columns and the tombstone table keyed like the
// target; adds the lineage to an existing target that lacks it; changes
// nothing the second time; and then `sluice check` resolves every table.
func TestIntegrationMigrateConfigCreatesTargets(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate") // the IoT tables of the example's first entry
	for _, stmt := range []string{
		"CREATE TABLE " + e.src + `.customers (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL,
			phone VARCHAR(32), ssn CHAR(11), full_name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			signed_up DATETIME NOT NULL, seen TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), UNIQUE KEY (email))`,
		"CREATE TABLE " + e.src + `.readings (site CHAR(4) NOT NULL, probe SMALLINT UNSIGNED NOT NULL, at DATETIME(6) NOT NULL,
			value DECIMAL(65,30), note TEXT, flags SET('a','b'), raw VARBINARY(16), n BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
			PRIMARY KEY (n), UNIQUE KEY site_probe_at (site, probe, at))`,
		// an existing target without the lineage columns
		"CREATE TABLE " + e.dst + `.readings (site CHAR(4) NOT NULL, probe SMALLINT UNSIGNED NOT NULL, at DATETIME(6) NOT NULL,
			value DECIMAL(65,30), note TEXT, flags SET('a','b'), raw VARBINARY(16), n BIGINT UNSIGNED NOT NULL,
			PRIMARY KEY (n), UNIQUE KEY site_probe_at (site, probe, at))`,
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	text := uncommentExample(readExample(t)) + `
  - source: crm.readings
    target: analytics.readings
    id: "n"                  # quoted: YAML reads a bare n as false
    window: at
    key: [site, probe, at]
`
	text = strings.NewReplacer("source_db.", e.src+".", "target_db.", e.dst+".", "crm.", e.src+".", "analytics.", e.dst+".").Replace(text)
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.extraEnv = []string{"PII_HASH_KEY=k3y"}

	// Before migrate, check names the missing table and the way out.
	if out, errOut, code := e.sluice("check", "--config", path); code != exitUsage || !strings.Contains(errOut, e.dst+".customers does not exist") ||
		!strings.Contains(errOut, "sluice migrate --config") {
		t.Fatalf("check before migrate: exit %d, want %d naming the missing target and migrate\n%s%s", code, exitUsage, out, errOut)
	}
	out := e.must("migrate", "--config", path)
	for _, want := range []string{"created " + e.dst + ".customers", "created " + e.dst + ".customers_tombstones",
		"added " + e.dst + ".readings.source_version", "added " + e.dst + ".readings.loaded_at", "created " + e.dst + ".readings_tombstones",
		"3 table(s) ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate output does not say %q:\n%s", want, out)
		}
	}
	cols := func(table string) string {
		t.Helper()
		rows, err := e.admin.Query(`SELECT CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE, ' ', IS_NULLABLE, ' ', COALESCE(CHARACTER_SET_NAME, '-'), ' ', COALESCE(COLLATION_NAME, '-'))
			FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, e.dst, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return strings.Join(out, "; ")
	}
	// id travels (the example excludes ssn only), email is hashed, phone
	// masked, full_name renamed with its collation kept.
	if got, want := cols("customers"), "id int(10) unsigned NO - -; email char(64) NO ascii ascii_general_ci; phone varchar(32) YES utf8mb4 utf8mb4_general_ci; "+
		"name varchar(100) NO utf8mb4 utf8mb4_bin; signed_up datetime NO - -; seen timestamp(3) NO - -; source_version bigint(20) unsigned YES - -; loaded_at datetime(6) YES - -"; got != want {
		t.Errorf("created customers:\n got %s\nwant %s", got, want)
	}
	// no key is declared: the key is the created target's primary key, the source's id
	if got, want := cols("customers_tombstones"), "id int(10) unsigned NO - -; source_version bigint(20) unsigned NO - -; deleted_at datetime(6) NO - -"; got != want {
		t.Errorf("customers_tombstones:\n got %s\nwant %s", got, want)
	}
	if got, want := cols("readings_tombstones"), "site char(4) NO utf8mb4 utf8mb4_general_ci; probe smallint(5) unsigned NO - -; at datetime(6) NO - -; source_version bigint(20) unsigned NO - -; deleted_at datetime(6) NO - -"; got != want {
		t.Errorf("readings_tombstones:\n got %s\nwant %s", got, want)
	}
	var keys string
	if err := e.admin.QueryRow(`SELECT GROUP_CONCAT(INDEX_NAME, ':', COLUMN_NAME ORDER BY INDEX_NAME, SEQ_IN_INDEX) FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'customers' AND NON_UNIQUE = 0`, e.dst).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != "PRIMARY:id" {
		t.Errorf("created customers' unique keys: %s, want only the key (PRIMARY id): a second unique index could mix two keys' rows", keys)
	}
	if again := e.must("migrate", "--config", path); strings.Count(again, "nothing to do") != 3 {
		t.Errorf("a second migrate changed something:\n%s", again)
	}
	e.must("check", "--config", path)
}
