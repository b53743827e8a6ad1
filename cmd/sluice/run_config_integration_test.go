package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIntegrationRunConfig: `sluice run --config --verify` is the nightly
// job of every configured table: the IoT table and a personal-data table
// are backfilled, applied by the group until it has caught up, and
// reconciled; a second run of the same window changes nothing.
func TestIntegrationRunConfig(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	e.must(append([]string{"seed", "--rows", "300"}, e.window()...)...)
	for _, stmt := range []string{
		"CREATE TABLE " + e.src + `.customers (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL,
			phone VARCHAR(32), ssn CHAR(11), full_name VARCHAR(100) NOT NULL, signed_up DATETIME NOT NULL, UNIQUE KEY (email))`,
		"INSERT INTO " + e.src + `.customers (email, phone, ssn, full_name, signed_up) VALUES
			('a@x.org', '+33612345678', '1', 'A', '2025-10-01 08:00:00'), ('b@x.org', NULL, NULL, 'B', '2025-10-01 09:00:00'),
			('c@x.org', '12', '3', 'C', '2025-09-30 23:59:59')`,
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.NewReplacer("source_db.", e.src+".", "target_db.", e.dst+".", "crm.", e.src+".", "analytics.", e.dst+".",
		"topic: sluice.raw_records", "topic: "+e.topic+".iot", "topic_prefix: sluice", "topic_prefix: "+e.topic).Replace(uncommentExample(readExample(t)))
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.extraEnv = []string{"PII_HASH_KEY=run-k3y"}
	e.must("migrate", "--config", path)
	out := e.must(append([]string{"run", "--config", path, "--verify"}, e.window()...)...)
	for _, want := range []string{"2 tables", "raw_records: source and target match", "customers: source and target match"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --config does not say %q:\n%s", want, out)
		}
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".customers"); n != 2 {
		t.Errorf("customers target holds %d rows, want the window's 2", n)
	}
	// A re-run of an unchanged window writes nothing: no row's load time moves.
	lastLoad := func() string {
		t.Helper()
		var a, b string
		if err := e.admin.QueryRow("SELECT CAST(MAX(loaded_at) AS CHAR), (SELECT CAST(MAX(loaded_at) AS CHAR) FROM "+e.dst+".customers) FROM "+e.dst+".records").Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		return a + " " + b
	}
	before := lastLoad()
	again := e.must(append([]string{"run", "--config", path, "--verify"}, e.window()...)...)
	if !strings.Contains(again, "customers: source and target match") {
		t.Errorf("a second run:\n%s", again)
	}
	if after := lastLoad(); after != before {
		t.Errorf("a second run wrote rows: last load times %s, then %s", before, after)
	}
}
