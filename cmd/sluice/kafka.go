package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
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

// kafkaConn builds the connection options every Kafka client of the
// command takes, and a description of them for errors ("SASL
// SCRAM-SHA-512 as sluice over TLS"), never with the password.
func (o *options) kafkaConn() ([]kgo.Opt, string, error) {
	var opts []kgo.Opt
	var desc []string
	if o.kafkaTLS || o.kafkaCA != "" || o.kafkaCert != "" || o.kafkaKey != "" || o.kafkaServerName != "" || o.kafkaInsecure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.kafkaServerName, InsecureSkipVerify: o.kafkaInsecure} //nolint:gosec // only by the explicit flag
		if o.kafkaCA != "" {
			pem, err := os.ReadFile(o.kafkaCA)
			if err != nil {
				return nil, "", usagef("--kafka-ca: %v", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, "", usagef("--kafka-ca %s: no PEM certificate in it", o.kafkaCA)
			}
		}
		if (o.kafkaCert == "") != (o.kafkaKey == "") {
			return nil, "", usagef("--kafka-cert and --kafka-key go together (got --kafka-cert %q, --kafka-key %q)", o.kafkaCert, o.kafkaKey)
		}
		if o.kafkaCert != "" {
			cert, err := tls.LoadX509KeyPair(o.kafkaCert, o.kafkaKey)
			if err != nil {
				return nil, "", usagef("--kafka-cert %s, --kafka-key %s: %v", o.kafkaCert, o.kafkaKey, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
		switch {
		case o.kafkaInsecure:
			desc = append(desc, "TLS without verifying the brokers")
		default:
			desc = append(desc, "TLS")
		}
	}
	if strings.EqualFold(o.kafkaSASL, "aws-msk-iam") {
		// MSK's IAM listener is TLS only (port 9098); the signature needs
		// no user or password, only AWS credentials (awscreds.go).
		if o.kafkaUser != "" {
			return nil, "", usagef("--kafka-user %q with --kafka-sasl aws-msk-iam: the login is the AWS identity, not a user", o.kafkaUser)
		}
		if len(desc) == 0 {
			opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
			desc = append(desc, "TLS")
		}
		return append(opts, kgo.SASL(aws.ManagedStreamingIAM(newAWSCredentials().Auth))), "SASL AWS_MSK_IAM, " + strings.Join(desc, ", "), nil
	}
	if o.kafkaSASL == "" {
		if o.kafkaUser != "" {
			return nil, "", usagef("--kafka-user %q without --kafka-sasl: say which mechanism", o.kafkaUser)
		}
		return opts, strings.Join(desc, ", "), nil
	}
	if o.kafkaUser == "" {
		return nil, "", usagef("--kafka-sasl %s: --kafka-user is required", o.kafkaSASL)
	}
	pass, ok := os.LookupEnv("SLUICE_KAFKA_PASSWORD")
	if path := os.Getenv("SLUICE_KAFKA_PASSWORD_FILE"); path != "" {
		if ok {
			return nil, "", usagef("SLUICE_KAFKA_PASSWORD_FILE and SLUICE_KAFKA_PASSWORD: give the password once")
		}
		var err error
		if pass, err = readSecret("SLUICE_KAFKA_PASSWORD_FILE", path); err != nil {
			return nil, "", err
		}
	}
	if pass == "" {
		return nil, "", usagef("--kafka-sasl %s: set the password in SLUICE_KAFKA_PASSWORD or SLUICE_KAFKA_PASSWORD_FILE (never on the command line)", o.kafkaSASL)
	}
	var m sasl.Mechanism
	switch strings.ToLower(o.kafkaSASL) {
	case "plain":
		m = plain.Auth{User: o.kafkaUser, Pass: pass}.AsMechanism()
	case "scram-sha-256":
		m = scram.Auth{User: o.kafkaUser, Pass: pass}.AsSha256Mechanism()
	case "scram-sha-512":
		m = scram.Auth{User: o.kafkaUser, Pass: pass}.AsSha512Mechanism()
	default:
		return nil, "", usagef("--kafka-sasl %q: want plain, scram-sha-256, scram-sha-512 or aws-msk-iam", o.kafkaSASL)
	}
	if len(desc) == 0 && !strings.EqualFold(o.kafkaSASL, "") {
		desc = append(desc, "no TLS")
	}
	return append(opts, kgo.SASL(m)), fmt.Sprintf("SASL %s as %s, %s", m.Name(), o.kafkaUser, strings.Join(desc, ", ")), nil
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
