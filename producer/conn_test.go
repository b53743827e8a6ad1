package producer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConnConfigOpts(t *testing.T) {
	pem := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(pem, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errNoPass := errors.New("set the password in SLUICE_KAFKA_PASSWORD")
	for _, tc := range []struct {
		name string
		c    ConnConfig
		pass string   // what Password gives; "" fails with errNoPass
		desc string   // the description, when it builds
		err  []string // what the error says
		asks bool     // whether Password is asked
	}{
		{name: "plaintext", desc: ""},
		{name: "TLS with the system's CAs", c: ConnConfig{TLS: true}, desc: "TLS"},
		{name: "SCRAM over TLS", c: ConnConfig{TLS: true, SASL: "SCRAM-SHA-512", User: "app"}, pass: "s3cret",
			desc: "SASL SCRAM-SHA-512 as app, TLS", asks: true},
		{name: "PLAIN", c: ConnConfig{SASL: "plain", User: "app"}, pass: "x", desc: "SASL PLAIN as app, no TLS", asks: true},
		{name: "insecure says so", c: ConnConfig{InsecureSkipVerify: true}, desc: "TLS without verifying the brokers"},
		{name: "no password", c: ConnConfig{SASL: "scram-sha-256", User: "app"}, err: []string{errNoPass.Error()}, asks: true},
		{name: "no user", c: ConnConfig{SASL: "plain"}, err: []string{"--kafka-user is required"}},
		{name: "user without a mechanism", c: ConnConfig{User: "app"}, err: []string{"--kafka-user", "--kafka-sasl"}},
		{name: "unknown mechanism", c: ConnConfig{SASL: "gssapi", User: "app"}, pass: "x",
			err: []string{`--kafka-sasl "gssapi"`, "aws-msk-iam"}, asks: true},
		{name: "MSK IAM is TLS", c: ConnConfig{SASL: "aws-msk-iam"}, desc: "SASL AWS_MSK_IAM, TLS"},
		{name: "MSK IAM takes no user", c: ConnConfig{SASL: "aws-msk-iam", User: "x"}, err: []string{"the login is the AWS identity"}},
		{name: "cert without key", c: ConnConfig{Cert: pem}, err: []string{"--kafka-cert and --kafka-key go together"}},
		{name: "CA file without a certificate", c: ConnConfig{CA: pem}, err: []string{"--kafka-ca", "no PEM certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := false
			tc.c.Password = func() (string, error) {
				asked = true
				if tc.pass == "" {
					return "", errNoPass
				}
				return tc.pass, nil
			}
			opts, desc, err := tc.c.Opts()
			if asked != tc.asks {
				t.Errorf("password asked %v, want %v", asked, tc.asks)
			}
			if len(tc.err) > 0 {
				if err == nil {
					t.Fatalf("Opts built %q, want an error", desc)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if desc != tc.desc {
				t.Errorf("description %q, want %q", desc, tc.desc)
			}
			if strings.Contains(desc, "s3cret") {
				t.Errorf("description %q shows the password", desc)
			}
			if want := strings.Count(tc.desc, "TLS") - strings.Count(tc.desc, "no TLS") + strings.Count(tc.desc, "SASL"); len(opts) != want {
				t.Errorf("%d options, want %d", len(opts), want)
			}
		})
	}
}
