package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIntegrationVerifyConfigTable: `sluice verify --config` reconciles a
// configured table whose target has a wider type (DATETIME(6) for the
// source's DATETIME) and a transformed key (lower-cased): equal tables
// match; a changed, a missing and an extra row exit 3 naming their keys.
func TestIntegrationVerifyConfigTable(t *testing.T) {
	e := newITEnv(t)
	for _, stmt := range []string{
		"CREATE DATABASE " + e.src, "CREATE DATABASE " + e.dst,
		"CREATE TABLE " + e.src + `.events (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, code VARCHAR(20) NOT NULL,
			at DATETIME NOT NULL, amount DECIMAL(10,2), note TEXT, UNIQUE KEY (code))`,
		"CREATE TABLE " + e.dst + `.events (id INT UNSIGNED NOT NULL PRIMARY KEY, code VARCHAR(20) NOT NULL,
			at DATETIME(6) NOT NULL, amount DECIMAL(12,2), note TEXT, source_version BIGINT UNSIGNED NULL, loaded_at DATETIME(6) NULL, UNIQUE KEY (code))`,
		"INSERT INTO " + e.src + `.events (code, at, amount, note) VALUES ('A-1', '2025-10-01 01:00:00', 1.50, 'x'),
			('B-2', '2025-10-01 02:00:00', NULL, NULL), ('C-3', '2025-10-01 23:00:00', -3.00, 'é'), ('D-4', '2025-10-02 01:00:00', 9, 'next day')`,
		"INSERT INTO " + e.dst + `.events (id, code, at, amount, note) VALUES (1, 'a-1', '2025-10-01 01:00:00', 1.50, 'x'),
			(2, 'b-2', '2025-10-01 02:00:00', NULL, NULL), (3, 'c-3', '2025-10-01 23:00:00', -3.00, 'é')`,
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	text := fmt.Sprintf(`tables:
  - source: %s.events
    target: %s.events
    window: at
    key: [code]
    transforms:
      code: [lower]
`, e.src, e.dst)
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out := e.must(append([]string{"verify", "--config", path, "--slices", "4"}, e.window()...)...)
	if !strings.Contains(out, "3 source rows, 3 target rows") || !strings.Contains(out, "source and target match") {
		t.Fatalf("equal tables:\n%s", out)
	}
	for _, stmt := range []string{
		"UPDATE " + e.dst + ".events SET note = 'changed' WHERE code = 'a-1'",
		"DELETE FROM " + e.dst + ".events WHERE code = 'b-2'",
		"INSERT INTO " + e.dst + ".events (id, code, at) VALUES (9, 'z-9', '2025-10-01 03:00:00')",
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := e.sluice(append([]string{"verify", "--config", path, "--slices", "1"}, e.window()...)...)
	if code != exitMismatch {
		t.Fatalf("verify after changes: exit %d, want %d\n%s%s", code, exitMismatch, out, errOut)
	}
	for _, want := range []string{`key a-1: content differs (column note: source "x", target "changed")`, "key b-2: missing in target", "key z-9: extra in target"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output does not say %q:\n%s", want, out)
		}
	}
}
