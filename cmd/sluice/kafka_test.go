package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKafkaConn(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    options
		env  map[string]string
		desc string   // the description, when it builds
		err  []string // what the usage error says
	}{
		{name: "plaintext", o: options{}, desc: ""},
		{name: "TLS with the system's CAs", o: options{kafkaTLS: true}, desc: "TLS"},
		{name: "SCRAM over TLS, password from a file", o: options{kafkaTLS: true, kafkaSASL: "SCRAM-SHA-512", kafkaUser: "app"},
			env: map[string]string{"SLUICE_KAFKA_PASSWORD_FILE": pw}, desc: "SASL SCRAM-SHA-512 as app, TLS"},
		{name: "PLAIN", o: options{kafkaSASL: "plain", kafkaUser: "app"}, env: map[string]string{"SLUICE_KAFKA_PASSWORD": "x"}, desc: "SASL PLAIN as app, no TLS"},
		{name: "insecure says so", o: options{kafkaInsecure: true}, desc: "TLS without verifying the brokers"},
		{name: "no password", o: options{kafkaSASL: "scram-sha-256", kafkaUser: "app"}, err: []string{"SLUICE_KAFKA_PASSWORD", "never on the command line"}},
		{name: "password twice", o: options{kafkaSASL: "scram-sha-256", kafkaUser: "app"},
			env: map[string]string{"SLUICE_KAFKA_PASSWORD": "x", "SLUICE_KAFKA_PASSWORD_FILE": pw}, err: []string{"give the password once"}},
		{name: "no user", o: options{kafkaSASL: "plain"}, err: []string{"--kafka-user is required"}},
		{name: "user without a mechanism", o: options{kafkaUser: "app"}, err: []string{"--kafka-user", "--kafka-sasl"}},
		{name: "unknown mechanism", o: options{kafkaSASL: "gssapi", kafkaUser: "app"}, env: map[string]string{"SLUICE_KAFKA_PASSWORD": "x"},
			err: []string{`--kafka-sasl "gssapi"`, "aws-msk-iam"}},
		{name: "MSK IAM is TLS", o: options{kafkaSASL: "aws-msk-iam"}, desc: "SASL AWS_MSK_IAM, TLS"},
		{name: "MSK IAM takes no user", o: options{kafkaSASL: "aws-msk-iam", kafkaUser: "x"}, err: []string{"the login is the AWS identity"}},
		{name: "cert without key", o: options{kafkaCert: pw}, err: []string{"--kafka-cert and --kafka-key go together"}},
		{name: "CA file without a certificate", o: options{kafkaCA: pw}, err: []string{"--kafka-ca", "no PEM certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"SLUICE_KAFKA_PASSWORD", "SLUICE_KAFKA_PASSWORD_FILE"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			opts, desc, err := tc.o.kafkaConn()
			if len(tc.err) > 0 {
				if _, ok := err.(usageError); !ok {
					t.Fatalf("error %v, want a usage error", err)
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
