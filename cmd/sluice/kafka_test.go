package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKafkaConn(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
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
		{name: "password from a file", o: options{kafkaTLS: true, kafkaSASL: "SCRAM-SHA-512", kafkaUser: "app"},
			env: map[string]string{"SLUICE_KAFKA_PASSWORD_FILE": pw}, desc: "SASL SCRAM-SHA-512 as app, TLS"},
		{name: "password from the environment", o: options{kafkaSASL: "plain", kafkaUser: "app"}, env: map[string]string{"SLUICE_KAFKA_PASSWORD": "x"}, desc: "SASL PLAIN as app, no TLS"},
		{name: "no password", o: options{kafkaSASL: "scram-sha-256", kafkaUser: "app"}, err: []string{"SLUICE_KAFKA_PASSWORD", "never on the command line"}},
		{name: "password twice", o: options{kafkaSASL: "scram-sha-256", kafkaUser: "app"},
			env: map[string]string{"SLUICE_KAFKA_PASSWORD": "x", "SLUICE_KAFKA_PASSWORD_FILE": pw}, err: []string{"give the password once"}},
		{name: "a bad setting is a usage error", o: options{kafkaUser: "app"}, err: []string{"--kafka-user", "--kafka-sasl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"SLUICE_KAFKA_PASSWORD", "SLUICE_KAFKA_PASSWORD_FILE"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := newCommand("test")
			*c.o = tc.o
			c.kafkaSet = true
			err := c.parse(nil)
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
			if c.o.kafkaDesc != tc.desc {
				t.Errorf("description %q, want %q", c.o.kafkaDesc, tc.desc)
			}
		})
	}
}
