package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestIntegrationSecuredEverywhere runs the pipeline against the test's
// second stack, whose MariaDB takes TLS connections only
// (require_secure_transport=ON) and whose broker takes SASL_SSL only, both
// with certificates of the stack's own CA (`make test` starts it with
// SLUICE_MYSQL_TLS=1 SLUICE_KAFKA_SECURE=1): migrate, seed, run with
// --verify, then the tail (whose binlog connection the server would refuse
// in clear) and consume, peek and a replay plan, with SCRAM-SHA-512. Without
// the MySQL CA, with a wrong Kafka password, or with a CA that does not
// sign the broker's certificate, the command fails at once and says which
// server refused it, and how it connected.
func TestIntegrationSecuredEverywhere(t *testing.T) {
	_, brokers := requireServers(t)
	base, ca, secured := os.Getenv("SLUICE_TEST_TLS_MYSQL_DSN"), os.Getenv("SLUICE_TEST_TLS_CA"), os.Getenv("SLUICE_TEST_TLS_BROKERS")
	if base == "" || ca == "" || secured == "" {
		if os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true" {
			t.Fatal("SLUICE_TEST_TLS_MYSQL_DSN, SLUICE_TEST_TLS_CA and SLUICE_TEST_TLS_BROKERS are not set (make test starts a secured stack and sets them)")
		}
		t.Skip("SLUICE_TEST_TLS_MYSQL_DSN, SLUICE_TEST_TLS_CA and SLUICE_TEST_TLS_BROKERS are not set (set by `make test`)")
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", ca)
	}
	if err := mysql.RegisterTLSConfig("sluice-test", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err != nil {
		t.Fatal(err)
	}
	e := newITEnvOn(t, base, brokers, "&tls=sluice-test")
	var secure string
	if err := e.admin.QueryRow("SELECT @@GLOBAL.require_secure_transport").Scan(&secure); err != nil || secure != "1" {
		t.Fatalf("require_secure_transport = %q (%v), want 1: the test needs a TLS-only server", secure, err)
	}

	// Without the CA, nothing connects, and the error names the server.
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := e.sluice("migrate")
	if code != exitFailed || !strings.Contains(errOut, cfg.Addr) {
		t.Fatalf("migrate without --mysql-ca: exit %d, want %d naming the server\n%s%s", code, exitFailed, out, errOut)
	}

	e.brokers = secured
	kafka := []string{"SLUICE_KAFKA_CA=" + ca, "SLUICE_KAFKA_SASL=scram-sha-512", "SLUICE_KAFKA_USER=sluice", "SLUICE_KAFKA_PASSWORD=sluice"}
	e.extraEnv = append([]string{"SLUICE_MYSQL_CA=" + ca}, kafka...)
	e.must("migrate")
	e.must(append([]string{"seed", "--rows", "3000"}, e.window()...)...)

	// A wrong password, or a CA that does not sign the broker's
	// certificate: refused at once, naming the broker and the mechanism.
	for _, bad := range []struct {
		name string
		env  []string
		says []string
	}{
		{"wrong password", []string{"SLUICE_KAFKA_PASSWORD=wrong"}, []string{secured, "SASL SCRAM-SHA-512 as sluice, TLS"}},
		{"untrusted certificate", []string{"SLUICE_KAFKA_CA=", "SLUICE_KAFKA_TLS=true"}, []string{secured, "certificate signed by unknown authority"}},
	} {
		e.extraEnv = append(append([]string{"SLUICE_MYSQL_CA=" + ca}, kafka...), bad.env...)
		t0 := time.Now()
		out, errOut, code := e.sluice(append([]string{"run"}, e.window()...)...)
		if code != exitFailed {
			t.Errorf("%s: exit %d, want %d\n%s%s", bad.name, code, exitFailed, out, errOut)
		}
		for _, w := range bad.says {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: the error does not say %q:\n%s", bad.name, w, errOut)
			}
		}
		t.Logf("%s: refused after %.1f s", bad.name, time.Since(t0).Seconds())
	}
	e.extraEnv = append([]string{"SLUICE_MYSQL_CA=" + ca}, kafka...)
	e.must("migrate")
	out, errOut, code = e.sluice(append([]string{"run", "--verify"}, e.window()...)...)
	if code != 0 {
		t.Fatalf("run --verify over TLS: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "new rows go through the upsert, without MariaDB's bulk insert") || !strings.Contains(errOut, "it uses TLS") {
		t.Errorf("run did not say that MariaDB's bulk insert is off over TLS (new rows go through the upsert):\n%s", errOut)
	}

	e.throughTail(5, 5, nil)
	if out := e.must("peek", "-n", "1", "--idle", "2s"); !strings.Contains(out, `"offset"`) {
		t.Errorf("peek over SASL_SSL printed no record:\n%s", out)
	}
	if out := e.must("replay", "--group", e.group, "--to-earliest", "--dry-run"); !strings.Contains(out, e.topic) {
		t.Errorf("replay --dry-run over SASL_SSL does not name the topic:\n%s", out)
	}
}
