package main

import (
	"crypto/tls"
	"crypto/x509"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestIntegrationMySQLTLSEverywhere runs the pipeline against the test's
// second MariaDB, which takes TLS connections only
// (require_secure_transport=ON, certificates from its own CA; `make test`
// starts it with SLUICE_MYSQL_TLS=1): migrate, seed, run with --verify,
// then the tail (whose binlog connection the server would refuse in clear)
// and consume, with nothing but --mysql-ca given. Without it, every command
// is refused and says which server refused it.
func TestIntegrationMySQLTLSEverywhere(t *testing.T) {
	_, brokers := requireServers(t)
	base, ca := os.Getenv("SLUICE_TEST_TLS_MYSQL_DSN"), os.Getenv("SLUICE_TEST_TLS_CA")
	if base == "" || ca == "" {
		if os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true" {
			t.Fatal("SLUICE_TEST_TLS_MYSQL_DSN and SLUICE_TEST_TLS_CA are not set (make test starts a TLS-only MariaDB and sets them)")
		}
		t.Skip("SLUICE_TEST_TLS_MYSQL_DSN and SLUICE_TEST_TLS_CA are not set (set by `make test`)")
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

	e.extraEnv = []string{"SLUICE_MYSQL_CA=" + ca}
	e.must("migrate")
	e.must(append([]string{"seed", "--rows", "3000"}, e.window()...)...)
	out, errOut, code = e.sluice(append([]string{"run", "--verify"}, e.window()...)...)
	if code != 0 {
		t.Fatalf("run --verify over TLS: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "stops sending MariaDB bulk inserts") || !strings.Contains(errOut, "it uses TLS") {
		t.Errorf("run did not say that MariaDB's bulk insert is off over TLS (new rows go through LOAD DATA):\n%s", errOut)
	}

	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	cons, clogs := e.startProc("consume", "--linger", "50ms")
	rng := rand.New(rand.NewPCG(5, 6))
	var ch changes
	for round := range 5 {
		e.mutate(rng, round, &ch)
	}
	e.waitSame(time.Minute, tlogs, clogs)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
	e.checkOps(ch, "")
}
