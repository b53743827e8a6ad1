package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/go-sql-driver/mysql"
)

// mysqlTLSName is the name under which the TLS settings of --mysql-ca,
// --mysql-cert and --mysql-key are registered with the driver; a DSN may
// also name it itself: ?tls=sluice.
const mysqlTLSName = "sluice"

// applyMySQLTLS registers the TLS settings of the --mysql-* flags with the
// driver and makes them the TLS of every DSN that names none of its own
// (tls=true, skip-verify, preferred or a name stay as they are). The DSN is
// then all a connection needs: the SQL pools and the tail's binlog
// connection (which takes the parsed DSN's TLS) alike, so no connection of
// a run goes in clear once one of them is set.
func (o *options) applyMySQLTLS() error {
	if o.mysqlCA == "" && o.mysqlCert == "" && o.mysqlKey == "" {
		return nil
	}
	if (o.mysqlCert == "") != (o.mysqlKey == "") {
		return usagef("--mysql-cert and --mysql-key go together (got --mysql-cert %q, --mysql-key %q)", o.mysqlCert, o.mysqlKey)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.mysqlCA != "" {
		pem, err := os.ReadFile(o.mysqlCA)
		if err != nil {
			return usagef("--mysql-ca: %v", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return usagef("--mysql-ca %s: no PEM certificate in it", o.mysqlCA)
		}
	}
	if o.mysqlCert != "" {
		cert, err := tls.LoadX509KeyPair(o.mysqlCert, o.mysqlKey)
		if err != nil {
			return usagef("--mysql-cert %s, --mysql-key %s: %v", o.mysqlCert, o.mysqlKey, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if err := mysql.RegisterTLSConfig(mysqlTLSName, tc); err != nil {
		return usagef("--mysql-ca: %v", err)
	}
	for _, d := range []struct {
		flag string
		dsn  *string
	}{{"--source-dsn", &o.sourceDSN}, {"--target-dsn", &o.targetDSN}} {
		if *d.dsn == "" {
			continue
		}
		cfg, err := mysql.ParseDSN(*d.dsn)
		if err != nil {
			return usagef("%s: %v", d.flag, err)
		}
		if cfg.TLSConfig == "" {
			cfg.TLSConfig = mysqlTLSName
			*d.dsn = cfg.FormatDSN()
		}
	}
	return nil
}
