package main

import (
	"errors"
	"fmt"
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
		desc string // the description, when it builds
		err  string // what the usage error says
	}{
		{name: "password from a file", o: options{kafkaTLS: true, kafkaSASL: "SCRAM-SHA-512", kafkaUser: "app"},
			env: map[string]string{"SLUICE_KAFKA_PASSWORD_FILE": pw}, desc: "SASL SCRAM-SHA-512 as app, TLS"},
		{name: "password from the environment", o: options{kafkaSASL: "plain", kafkaUser: "app"}, env: map[string]string{"SLUICE_KAFKA_PASSWORD": "x"}, desc: "SASL PLAIN as app, no TLS"},
		{name: "no password", o: options{kafkaSASL: "scram-sha-256", kafkaUser: "app"}, err: "set the password in SLUICE_KAFKA_PASSWORD or SLUICE_KAFKA_PASSWORD_FILE (never on the command line)"},
		{name: "password twice", o: options{kafkaSASL: "scram-sha-256", kafkaUser: "app"},
			env: map[string]string{"SLUICE_KAFKA_PASSWORD": "x", "SLUICE_KAFKA_PASSWORD_FILE": pw}, err: "give the password once"},
		{name: "a bad setting is a usage error", o: options{kafkaUser: "app"}, err: `--kafka-user "app" without --kafka-sasl`},
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
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "" && c.o.kafkaDesc != tc.desc:
				t.Errorf("description %q, want %q", c.o.kafkaDesc, tc.desc)
			case tc.err != "" && (!errors.As(err, new(usageError)) || !strings.Contains(fmt.Sprint(err), tc.err)):
				t.Errorf("error %v, want a usage error saying %q", err, tc.err)
			}
		})
	}
}
