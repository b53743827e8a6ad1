package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden from this run's output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -run %s -update rewrites it):\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// exampleFor is the shipped example configuration pointed at the test's
// databases, with its commented personal-data table uncommented.
func (e *itEnv) exampleFor(t *testing.T) string {
	t.Helper()
	text := uncommentExample(readExample(t))
	text = strings.NewReplacer("source_db.", e.src+".", "target_db.", e.dst+".", "crm.", e.src+".", "analytics.", e.dst+".").Replace(text)
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// createCustomers makes the personal-data tables of the example's second
// entry.
func (e *itEnv) createCustomers(t *testing.T) {
	t.Helper()
	for _, stmt := range []string{
		"CREATE TABLE " + e.src + `.customers (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL,
			phone VARCHAR(32), ssn CHAR(11), full_name VARCHAR(100) NOT NULL, signed_up DATETIME NOT NULL, UNIQUE KEY (email))`,
		"CREATE TABLE " + e.dst + `.customers (id INT UNSIGNED NOT NULL PRIMARY KEY, email CHAR(64) NOT NULL,
			phone VARCHAR(32), name VARCHAR(100) NOT NULL, signed_up DATETIME NOT NULL, UNIQUE KEY (email))`,
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntegrationCheckExample: `sluice check` on the shipped example (its
// IoT table as `sluice migrate` creates it, and its personal-data table)
// prints the plan of each.
func TestIntegrationCheckExample(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	e.createCustomers(t)
	path := e.exampleFor(t)
	e.extraEnv = []string{"PII_HASH_KEY=never-shown-k3y"}
	out := e.must("check", "--config", path)
	if strings.Contains(out, "never-shown") {
		t.Fatalf("the hash key is in the output:\n%s", out)
	}
	golden(t, "check-example.golden", strings.NewReplacer(e.src, "source_db", e.dst, "target_db").Replace(out))

	// SLUICE_CONFIG names the file as --config does
	e.extraEnv = append(e.extraEnv, "SLUICE_CONFIG="+path)
	if again := e.must("check"); again != out {
		t.Errorf("with SLUICE_CONFIG:\n%s\nwith --config:\n%s", again, out)
	}
}

// TestIntegrationCheckBadConfig: a bad configuration exits 2 with the table
// and the field named, and writes nothing.
func TestIntegrationCheckBadConfig(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	e.createCustomers(t)
	e.extraEnv = []string{"PII_HASH_KEY=k"}
	good := readFile(t, e.exampleFor(t))
	tables := e.count("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?, ?)", e.src, e.dst)
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{name: "window not a time", from: "window: timestamp", to: "window: device_type",
			want: "table " + e.src + ".raw_records: window: column \"device_type\" is varchar(255), not DATE, DATETIME or TIMESTAMP"},
		{name: "key not unique", from: "key: [device_type, event_type, timestamp]", to: "key: [device_type, event_type]",
			want: "table " + e.src + ".raw_records: key: (device_type, event_type) is not unique in the target"},
		{name: "two tables, one target", from: "target: " + e.dst + ".customers", to: "target: " + e.dst + ".records",
			want: "table " + e.src + ".customers: target: " + e.dst + ".records is also the target of table " + e.src + ".raw_records"},
		{name: "unknown field", from: "window: signed_up", to: "windows: signed_up",
			want: `tables[1] (` + e.src + `.customers): unknown field "windows"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("the example has no %q", tc.from)
			}
			path := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(good, tc.from, tc.to, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := e.sluice("check", "--config", path)
			if code != exitUsage || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q\nstderr: %s\nwant exit 2 and %q", code, out, errOut, tc.want)
			}
		})
	}
	if n := e.count("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?, ?)", e.src, e.dst); n != tables {
		t.Errorf("tables: %d before, %d after", tables, n)
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".records"); n != 0 {
		t.Errorf("%d rows written to records", n)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
