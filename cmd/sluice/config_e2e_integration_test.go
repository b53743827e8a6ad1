package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIntegrationConfigEndToEnd: three configured tables of different
// shapes, end to end through the commands a user runs: the IoT table as
// today (the shipped example's first entry), a personal-data table (hashed,
// masked, dropped and renamed columns) and a mixed-type table with a
// composite non-time key and a TIMESTAMP window. migrate --config creates
// the missing targets; tail --config and consume --config run while
// backfill --config loads the window and the sources change (inserts,
// updates, a key change, deletes, a truncate); verify --config then finds
// every target equal to its source.
func TestIntegrationConfigEndToEnd(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate") // the IoT source and target, as the flag-only setup makes them
	e.must(append([]string{"seed", "--rows", "400"}, e.window()...)...)
	for _, stmt := range []string{
		"CREATE TABLE " + e.src + `.customers (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL,
			phone VARCHAR(32), ssn CHAR(11), full_name VARCHAR(100) NOT NULL, signed_up DATETIME NOT NULL, UNIQUE KEY (email))`,
		"CREATE TABLE " + e.src + `.readings (n BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, site CHAR(4) NOT NULL,
			probe SMALLINT UNSIGNED NOT NULL, seq INT NOT NULL, value DECIMAL(30,10), f DOUBLE, note TEXT, flags SET('a','b'),
			raw VARBINARY(8), at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), UNIQUE KEY k (site, probe, seq))`,
		"INSERT INTO " + e.src + `.customers (email, phone, ssn, full_name, signed_up) VALUES
			('Ann@Example.com', '+33612345678', '123-45-6789', 'Ann', '2025-10-01 08:00:00'),
			('bob@example.com', NULL, NULL, 'Bob', '2025-10-01 09:00:00'),
			('old@example.com', '1', '2', 'Old', '2025-09-01 09:00:00')`,
		"INSERT INTO " + e.src + `.readings (site, probe, seq, value, f, note, flags, raw, at) VALUES
			('PAR1', 1, 1, 1.5, 0.1, 'é', 'a', X'00', '2025-10-01 01:00:00.001'),
			('PAR1', 1, 2, NULL, NULL, NULL, '', NULL, '2025-10-01 02:00:00.002'),
			('LYS2', 7, 1, -3.25, 1e300, 'x', 'a,b', X'FF00', '2025-10-01 03:00:00.003')`,
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	text := uncommentExample(readExample(t)) + `
  - source: crm.readings
    target: analytics.readings
    id: "n"
    window: at
    key: [site, probe, seq]
`
	text = strings.NewReplacer("source_db.", e.src+".", "target_db.", e.dst+".", "crm.", e.src+".", "analytics.", e.dst+".",
		"topic: sluice.raw_records", "topic: "+e.topic+".iot", "topic_prefix: sluice", "topic_prefix: "+e.topic).Replace(text)
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.extraEnv = []string{"PII_HASH_KEY=e2e-k3y"}
	e.must("migrate", "--config", path)

	tl, tlogs := e.startTail("--config", path, "--from", "now", "--flush-interval", "20ms")
	cons, clogs := e.startProc("consume", "--config", path, "--linger", "50ms")
	e.must(append([]string{"backfill", "--config", path}, e.window()...)...)

	for _, q := range []string{
		// the IoT table: the seeded rows change as mutate does
		"UPDATE {src}.raw_records SET message = CONCAT('upd ', id) ORDER BY id LIMIT 7",
		"UPDATE {src}.raw_records SET event_type = CONCAT('moved', id) ORDER BY id DESC LIMIT 2",
		"DELETE FROM {src}.raw_records ORDER BY id LIMIT 3",
		"INSERT INTO {src}.raw_records (date, timestamp, device_type, event_type, message) VALUES ('2025-10-01', '2025-10-01 12:34:56', 'e2e', 'new', 'Hello')",
		// the personal data
		"UPDATE {src}.customers SET phone = '+1 555 0100', full_name = 'Robert' WHERE email = 'bob@example.com'",
		"DELETE FROM {src}.customers WHERE email = 'Ann@Example.com'",
		"INSERT INTO {src}.customers (email, phone, ssn, full_name, signed_up) VALUES (' Cy@Example.com ', '12345', '0', 'Cy', '2025-10-01 10:00:00')",
		// the mixed types: a key change, a truncate, rows after it
		"UPDATE {src}.readings SET seq = 3, note = 'moved' WHERE site = 'PAR1' AND seq = 2",
		"TRUNCATE TABLE {src}.readings",
		`INSERT INTO {src}.readings (site, probe, seq, value, f, note, flags, raw, at) VALUES
			('NCE3', 2, 9, 99.0000000001, -0.5, 'after', 'b', X'0102', '2025-10-01 04:00:00.004')`,
	} {
		e.srcExec(q)
	}

	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, errOut, code := e.sluice(append([]string{"verify", "--config", path, "--slices", "2"}, e.window()...)...)
		if code == 0 {
			for _, want := range []string{"customers: source and target match", "readings: source and target match", "raw_records: source and target match"} {
				if !strings.Contains(out, want) {
					t.Errorf("verify does not say %q:\n%s", want, out)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			for _, r := range e.committedRecords(e.topic + "." + e.src + ".readings") {
				v := string(r.Value)
				t.Logf("readings %d@%d key %s: %s", r.Partition, r.Offset, r.Key, v[strings.Index(v, `"source"`):])
			}
			if rows, err := e.admin.Query("SELECT CONCAT_WS('|', site, probe, seq, COALESCE(source_version, 'NULL'), loaded_at) FROM " + e.dst + ".readings"); err == nil {
				for rows.Next() {
					var s string
					_ = rows.Scan(&s)
					t.Logf("target row %s", s)
				}
				rows.Close()
			}
			if rows, err := e.admin.Query("SELECT CONCAT_WS('|', target_table, source_version, truncated_at) FROM " + e.dst + ".sluice_truncates"); err == nil {
				for rows.Next() {
					var s string
					_ = rows.Scan(&s)
					t.Logf("marker %s", s)
				}
				rows.Close()
			}
			t.Fatalf("verify --config still differs after 2 minutes (exit %d):\n%s%s\n--- tail\n%s\n--- consume\n%s", code, out, errOut, tlogs, clogs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)

	// The personal data arrived hashed, masked, renamed and without ssn.
	var email, phone, name string
	if err := e.admin.QueryRow("SELECT email, phone, name FROM "+e.dst+".customers WHERE name = 'Robert'").Scan(&email, &phone, &name); err != nil {
		t.Fatal(err)
	}
	if len(email) != 64 || phone != "*******0100" {
		t.Errorf("customers row: email %q (want 64 hex digits), phone %q (want masked)", email, phone)
	}
	var ssnCols int
	if err := e.admin.QueryRow("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = 'customers' AND column_name = 'ssn'", e.dst).Scan(&ssnCols); err != nil || ssnCols != 0 {
		t.Errorf("the target has an ssn column (%d, %v): the excluded column must not travel", ssnCols, err)
	}
}
