package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// testCA returns a self-signed certificate in PEM, made for the test.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestApplyMySQLTLS(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(ca, testCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		o                options
		err              []string
		wantSrc, wantDst string // the tls= each DSN ends with
	}{
		{name: "nothing set: DSNs untouched", o: options{sourceDSN: "u:p@tcp(h:3306)/s", targetDSN: "u:p@tcp(h:3306)/t"}},
		{name: "a CA: every DSN without tls= takes it", o: options{mysqlCA: ca, sourceDSN: "u:p@tcp(h:3306)/s", targetDSN: "u:p@tcp(h:3306)/t?tls=skip-verify"},
			wantSrc: mysqlTLSName, wantDst: "skip-verify"},
		{name: "cert without key", o: options{mysqlCert: ca}, err: []string{"--mysql-cert and --mysql-key go together"}},
		{name: "missing CA file", o: options{mysqlCA: filepath.Join(dir, "nope.pem")}, err: []string{"--mysql-ca", "nope.pem"}},
		{name: "CA file without a certificate", o: options{mysqlCA: notPEM}, err: []string{"--mysql-ca", "not.pem", "no PEM certificate"}},
		{name: "key pair that does not load", o: options{mysqlCert: ca, mysqlKey: notPEM}, err: []string{"--mysql-cert", "--mysql-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.applyMySQLTLS()
			if len(tc.err) > 0 {
				var ue usageError
				if err == nil || !strings.Contains(err.Error(), tc.err[0]) {
					t.Fatalf("error %v, want one saying %v", err, tc.err)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if !asUsage(err, &ue) {
					t.Errorf("error %v is not a usage error (exit 2)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []struct{ dsn, want string }{{tc.o.sourceDSN, tc.wantSrc}, {tc.o.targetDSN, tc.wantDst}} {
				cfg, err := mysql.ParseDSN(d.dsn)
				if err != nil {
					t.Fatal(err)
				}
				if cfg.TLSConfig != d.want {
					t.Errorf("DSN %s has tls=%q, want %q", d.dsn, cfg.TLSConfig, d.want)
				}
			}
		})
	}
}

func asUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	*ue = u
	return ok
}
