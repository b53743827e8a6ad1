package main

import (
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestIntegrationLeastPrivilege runs the nightly job, the tail and the
// consumers as the two users the README's "Schema" section grants, and
// nothing more: a source user with SELECT on the source database and
// REPLICATION SLAVE and REPLICATION CLIENT, a target user with SELECT,
// INSERT, UPDATE, DELETE on records and records_tombstones and SELECT,
// INSERT, UPDATE on sluice_truncates. Only migrate runs as an admin.
func TestIntegrationLeastPrivilege(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	e.must(append([]string{"seed", "--rows", "3000"}, e.window()...)...)
	src, dst := "src_"+e.src[len("it_src_"):], "dst_"+e.src[len("it_src_"):]
	for _, q := range []string{
		"CREATE USER '" + src + "'@'%' IDENTIFIED BY 'pw-src'",
		"GRANT SELECT ON " + e.src + ".* TO '" + src + "'@'%'",
		"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '" + src + "'@'%'",
		"CREATE USER '" + dst + "'@'%' IDENTIFIED BY 'pw-dst'",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON " + e.dst + ".records TO '" + dst + "'@'%'",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON " + e.dst + ".records_tombstones TO '" + dst + "'@'%'",
		"GRANT SELECT, INSERT, UPDATE ON " + e.dst + ".sluice_truncates TO '" + dst + "'@'%'",
	} {
		e.srcExec(q)
	}
	t.Cleanup(func() {
		e.admin.Exec("DROP USER IF EXISTS '" + src + "'@'%'")
		e.admin.Exec("DROP USER IF EXISTS '" + dst + "'@'%'")
	})
	cfg, err := mysql.ParseDSN(e.base)
	if err != nil {
		t.Fatal(err)
	}
	dsn := func(user, pass, db string) string {
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, pass, "tcp", cfg.Addr, db
		return c.FormatDSN()
	}
	e.extraEnv = []string{"SLUICE_SOURCE_DSN=" + dsn(src, "pw-src", e.src), "SLUICE_TARGET_DSN=" + dsn(dst, "pw-dst", e.dst)}

	out, errOut, code := e.sluice(append([]string{"run", "--verify"}, e.window()...)...)
	if code != 0 {
		t.Fatalf("run --verify as %s and %s: exit %d\n%s%s", src, dst, code, out, errOut)
	}
	if strings.Contains(errOut, "level=WARN") && strings.Contains(errOut, "denied") {
		t.Errorf("run met a missing privilege:\n%s", errOut)
	}
	e.throughTail(7, 5, func() {
		e.srcExec("TRUNCATE TABLE {src}.raw_records")
		e.insertRows(0, 10, "after truncate")
	})
}
