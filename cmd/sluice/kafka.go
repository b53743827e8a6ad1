package main

import (
	"os"

	"github.com/sluice-dev/sluice/producer"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka connection's security, one set of flags for every client a
// command builds (producer, consumer, tail, state, admin, replay, peek,
// dlq): TLS, and SASL PLAIN or SCRAM from franz-go's own sasl packages. The
// password comes only from the environment or a file, never a flag.
func (c *command) kafkaSecurity() {
	c.fs.BoolVar(&c.o.kafkaTLS, "kafka-tls", false, "connect to the brokers over TLS (on by itself with --kafka-ca, --kafka-cert or --kafka-server-name)")
	c.fs.StringVar(&c.o.kafkaCA, "kafka-ca", "", "PEM file of the CA(s) of the brokers' certificates (default: the system's)")
	c.fs.StringVar(&c.o.kafkaCert, "kafka-cert", "", "PEM file of a client certificate, for mutual TLS (with --kafka-key)")
	c.fs.StringVar(&c.o.kafkaKey, "kafka-key", "", "PEM file of the client certificate's private key (with --kafka-cert)")
	c.fs.StringVar(&c.o.kafkaServerName, "kafka-server-name", "", "the name the brokers' certificates must carry (default: each broker's host)")
	c.fs.BoolVar(&c.o.kafkaInsecure, "kafka-insecure-skip-verify", false, "TLS without verifying the brokers' certificates: encryption against eavesdroppers only, for tests")
	c.fs.StringVar(&c.o.kafkaSASL, "kafka-sasl", "", "SASL mechanism: plain, scram-sha-256, scram-sha-512 (the password from SLUICE_KAFKA_PASSWORD or SLUICE_KAFKA_PASSWORD_FILE) or aws-msk-iam (AWS credentials from the environment or the ECS task role) (\"\": none)")
	c.fs.StringVar(&c.o.kafkaUser, "kafka-user", "", "SASL user name")
}

// kafkaConn is the Kafka connection's security of the flags; the password
// comes only from the environment or a file, never a flag.
func (o *options) kafkaConn() producer.ConnConfig {
	return producer.ConnConfig{
		TLS: o.kafkaTLS, CA: o.kafkaCA, Cert: o.kafkaCert, Key: o.kafkaKey, ServerName: o.kafkaServerName, InsecureSkipVerify: o.kafkaInsecure,
		SASL: o.kafkaSASL, User: o.kafkaUser, Password: o.kafkaPassword,
	}
}

// kafkaPassword reads the SASL password from SLUICE_KAFKA_PASSWORD or the
// file SLUICE_KAFKA_PASSWORD_FILE names.
func (o *options) kafkaPassword() (string, error) {
	pass, ok := os.LookupEnv("SLUICE_KAFKA_PASSWORD")
	if path := os.Getenv("SLUICE_KAFKA_PASSWORD_FILE"); path != "" {
		if ok {
			return "", usagef("SLUICE_KAFKA_PASSWORD_FILE and SLUICE_KAFKA_PASSWORD: give the password once")
		}
		var err error
		if pass, err = readSecret("SLUICE_KAFKA_PASSWORD_FILE", path); err != nil {
			return "", err
		}
	}
	if pass == "" {
		return "", usagef("--kafka-sasl %s: set the password in SLUICE_KAFKA_PASSWORD or SLUICE_KAFKA_PASSWORD_FILE (never on the command line)", o.kafkaSASL)
	}
	return pass, nil
}

// kafkaClient are the options of a plain client of the command's brokers:
// the seeds, the dial timeout and the connection's security.
func (o *options) kafkaClient() []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(splitList(o.brokers)...), kgo.DialTimeout(o.kafkaTimeout)}, o.kafkaOpts...)
}

// securityNote renders the connection's security for an error: " (…)", or "".
func securityNote(desc string) string {
	if desc == "" {
		return ""
	}
	return " (" + desc + ")"
}
