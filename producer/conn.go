package producer

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

// ConnConfig is the Kafka connection's security, one for every client a
// command builds (producer, consumer, tail, state, admin, replay, peek,
// dlq): TLS, and SASL PLAIN or SCRAM from franz-go's own sasl packages, or
// AWS_MSK_IAM signed with the credentials of awscreds.go. cmd/sluice fills
// it from the --kafka-* flags; its errors name those flags.
type ConnConfig struct {
	// TLS turns TLS on; any of CA, Cert, Key, ServerName or
	// InsecureSkipVerify turns it on by itself.
	TLS bool
	// CA, Cert and Key are PEM files: the CA(s) of the brokers'
	// certificates (default: the system's), and a client certificate and
	// its key, for mutual TLS.
	CA, Cert, Key string
	// ServerName is the name the brokers' certificates must carry
	// (default: each broker's host).
	ServerName string
	// InsecureSkipVerify does TLS without verifying the brokers: against
	// eavesdroppers only, for tests.
	InsecureSkipVerify bool
	// SASL is the mechanism: plain, scram-sha-256, scram-sha-512,
	// aws-msk-iam, or "" for none; User is its user (none for aws-msk-iam).
	SASL, User string
	// Password returns the SASL password, asked only when a mechanism
	// needs one, so that a password is never required, read or shown
	// otherwise (cmd/sluice reads it from the environment, never a flag).
	Password func() (string, error)
}

// Opts builds the connection options every Kafka client of the command
// takes, and a description of them for errors ("SASL SCRAM-SHA-512 as
// sluice, TLS"), never with the password.
func (c ConnConfig) Opts() ([]kgo.Opt, string, error) {
	var opts []kgo.Opt
	var desc []string
	if c.TLS || c.CA != "" || c.Cert != "" || c.Key != "" || c.ServerName != "" || c.InsecureSkipVerify {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, "", err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
		if c.InsecureSkipVerify {
			desc = append(desc, "TLS without verifying the brokers")
		} else {
			desc = append(desc, "TLS")
		}
	}
	if strings.EqualFold(c.SASL, "aws-msk-iam") {
		// MSK's IAM listener is TLS only (port 9098); the signature needs
		// no user or password, only AWS credentials (awscreds.go).
		if c.User != "" {
			return nil, "", fmt.Errorf("--kafka-user %q with --kafka-sasl aws-msk-iam: the login is the AWS identity, not a user", c.User)
		}
		if len(desc) == 0 {
			opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
			desc = append(desc, "TLS")
		}
		return append(opts, kgo.SASL(aws.ManagedStreamingIAM(newAWSCredentials().Auth))), "SASL AWS_MSK_IAM, " + strings.Join(desc, ", "), nil
	}
	if c.SASL == "" {
		if c.User != "" {
			return nil, "", fmt.Errorf("--kafka-user %q without --kafka-sasl: say which mechanism", c.User)
		}
		return opts, strings.Join(desc, ", "), nil
	}
	if c.User == "" {
		return nil, "", fmt.Errorf("--kafka-sasl %s: --kafka-user is required", c.SASL)
	}
	if c.Password == nil {
		return nil, "", fmt.Errorf("--kafka-sasl %s: no password", c.SASL)
	}
	pass, err := c.Password()
	if err != nil {
		return nil, "", err
	}
	var m sasl.Mechanism
	switch strings.ToLower(c.SASL) {
	case "plain":
		m = plain.Auth{User: c.User, Pass: pass}.AsMechanism()
	case "scram-sha-256":
		m = scram.Auth{User: c.User, Pass: pass}.AsSha256Mechanism()
	case "scram-sha-512":
		m = scram.Auth{User: c.User, Pass: pass}.AsSha512Mechanism()
	default:
		return nil, "", fmt.Errorf("--kafka-sasl %q: want plain, scram-sha-256, scram-sha-512 or aws-msk-iam", c.SASL)
	}
	if len(desc) == 0 {
		desc = append(desc, "no TLS")
	}
	return append(opts, kgo.SASL(m)), fmt.Sprintf("SASL %s as %s, %s", m.Name(), c.User, strings.Join(desc, ", ")), nil
}

// tlsConfig is the TLS of the connection, from its PEM files.
func (c ConnConfig) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // only by the explicit flag
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("--kafka-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--kafka-ca %s: no PEM certificate in it", c.CA)
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, fmt.Errorf("--kafka-cert and --kafka-key go together (got --kafka-cert %q, --kafka-key %q)", c.Cert, c.Key)
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("--kafka-cert %s, --kafka-key %s: %w", c.Cert, c.Key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
