// Command sluice-kafka runs a single-broker, Kafka-protocol compatible server
// backed by github.com/twmb/franz-go/pkg/kfake.
//
// It exists only for the local demo stack (deploy/local/stack.sh) and for
// integration tests, so that neither needs a JVM, ZooKeeper/KRaft or Docker.
// It is a development tool: it is not a real Kafka, has no replication, no
// security, and it is deliberately kept out of the sluice binary (it lives in
// its own main package and nothing in sluice imports it).
//
// Usage:
//
//	sluice-kafka [--listen 127.0.0.1:9092] [--data-dir DIR] [--partitions 12] [--log-level none|error|warn|info|debug]
//
// The broker binds only the --listen address and advertises that address in
// metadata responses (an unspecified host such as 0.0.0.0 or "" is advertised
// as 127.0.0.1). Once ready it prints its listen address(es) on stdout, one per
// line. With --data-dir, topics, records and committed offsets survive
// restarts; without it everything is kept in memory. SIGINT or SIGTERM shuts
// down gracefully (flushing --data-dir); a second signal exits immediately
// with status 1.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		listen      string
		dataDir     string
		partitions  int
		logLevelStr string
		autoCreate  bool
		tlsCert     string
		tlsKey      string
		saslUser    string
	)
	flag.StringVar(&listen, "listen", "127.0.0.1:9092", "host:port to bind (only this address is bound; it is also the advertised address)")
	flag.StringVar(&dataDir, "data-dir", "", "directory for persistent state; empty keeps everything in memory")
	flag.IntVar(&partitions, "partitions", 12, "default number of partitions for topics created with -1 partitions")
	flag.StringVar(&logLevelStr, "log-level", "warn", "log level: none, error, warn, info, debug")
	flag.BoolVar(&autoCreate, "auto-create-topics", false, "create unknown topics on metadata requests that ask for it")
	flag.StringVar(&tlsCert, "tls-cert", "", "PEM certificate to serve TLS with (with --tls-key): clients must connect over TLS")
	flag.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	flag.StringVar(&saslUser, "sasl-user", "", "require SASL: this user, with the password in SLUICE_KAFKA_BROKER_PASSWORD, for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512")
	flag.Parse()

	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sluice-kafka: unexpected arguments: %v\n", flag.Args())
		return 2
	}
	lvl, err := parseLogLevel(logLevelStr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice-kafka: %v\n", err)
		return 2
	}
	if partitions < 1 {
		fmt.Fprintf(os.Stderr, "sluice-kafka: --partitions must be >= 1, got %d\n", partitions)
		return 2
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice-kafka: bad --listen %q: %v\n", listen, err)
		return 2
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		fmt.Fprintf(os.Stderr, "sluice-kafka: bad port in --listen %q\n", listen)
		return 2
	}
	bindAddr := net.JoinHostPort(host, portStr)

	// kfake always asks to listen on 127.0.0.1:<port>; ignore that and bind
	// exactly the requested address. kfake advertises ln.Addr() in metadata,
	// so an unspecified bind address is advertised as loopback instead.
	listenFn := func(network, _ string) (net.Listener, error) {
		ln, err := net.Listen(network, bindAddr)
		if err != nil {
			return nil, err
		}
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
			return advertisedListener{ln, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tcp.Port}}, nil
		}
		return ln, nil
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(listenFn),
		kfake.DefaultNumPartitions(partitions),
		kfake.WithLogger(kfake.BasicLogger(os.Stderr, lvl)),
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	if (tlsCert == "") != (tlsKey == "") {
		fmt.Fprintln(os.Stderr, "sluice-kafka: --tls-cert and --tls-key go together")
		return 2
	}
	if tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice-kafka: --tls-cert %s, --tls-key %s: %v\n", tlsCert, tlsKey, err)
			return 2
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	if saslUser != "" {
		pass := os.Getenv("SLUICE_KAFKA_BROKER_PASSWORD")
		if pass == "" {
			fmt.Fprintln(os.Stderr, "sluice-kafka: --sasl-user needs its password in SLUICE_KAFKA_BROKER_PASSWORD")
			return 2
		}
		opts = append(opts, kfake.EnableSASL())
		for _, m := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
			opts = append(opts, kfake.Superuser(m, saslUser, pass))
		}
	}
	if autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}

	// Install the handler before the listener is up so that a signal
	// arriving during startup is not lost.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice-kafka: starting broker on %s: %v\n", bindAddr, err)
		return 1
	}
	for _, addr := range c.ListenAddrs() {
		fmt.Println(addr)
	}

	sig := <-sigs
	fmt.Fprintf(os.Stderr, "sluice-kafka: received %v, shutting down (signal again to force)\n", sig)
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	select {
	case <-done:
		return 0
	case <-sigs:
		fmt.Fprintln(os.Stderr, "sluice-kafka: forced exit")
		return 1
	}
}

func parseLogLevel(s string) (kfake.LogLevel, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return kfake.LogLevelNone, nil
	case "error":
		return kfake.LogLevelError, nil
	case "warn":
		return kfake.LogLevelWarn, nil
	case "info":
		return kfake.LogLevelInfo, nil
	case "debug":
		return kfake.LogLevelDebug, nil
	}
	return kfake.LogLevelNone, fmt.Errorf("unknown --log-level %q (want none, error, warn, info or debug)", s)
}

// advertisedListener reports addr instead of the bound (unspecified) address,
// which kfake would otherwise advertise to clients.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }
