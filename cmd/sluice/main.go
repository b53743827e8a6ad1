// Command sluice moves IoT event logs from a MySQL source to a MySQL target
// through Kafka. main only wires the stages together: flags and environment
// into stage configs, the lifecycle (signals, errgroup), and the metrics
// endpoint.
//
// Exit status: 0 success; 1 failure (the run did not complete: see the error);
// 2 usage error (a bad flag or value); 3 verify found differences; 4 partial:
// the run completed but records went to the dead-letter topic.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// Exit statuses, documented in the README.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitMismatch = 3
	exitPartial  = 4
)

// errMismatch marks a verify that ran and found differences.
var errMismatch = errors.New("source and target differ")

type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

func subcommands() []subcommand {
	return []subcommand{
		{"migrate", "Create the source and target databases and tables if missing, and add Sluice's lineage columns to an existing records table. Idempotent.", runMigrate},
		{"seed", "Write deterministic synthetic IoT logs into the source table for a window.", runSeed},
		{"backfill", "Read a window of the source in keyset chunks and produce every row to the Kafka topic.", runBackfill},
		{"consume", "Join the consumer group and apply change events to the target in transactional batches, until stopped.", runConsume},
		{"tail", "Follow the source's binlog (CDC) and produce its inserts, updates and deletes to the topic, until stopped; resumes where it stopped.", runTail},
		{"run", "The nightly job: backfill a window, consume until the group has applied all of it, print a summary.", runRun},
		{"verify", "Reconcile source and target for a window, slice by slice; exit 3 on any difference.", runVerify},
		{"peek", "Print the first records of the topic with their partition, offset, headers, key and value.", runPeek},
		{"dlq", "Inspect the dead-letter topic (dlq inspect), or re-drive its records to their topic once the cause is fixed (dlq redrive).", runDLQ},
		{"replay", "Move a stopped consumer group's offsets (to earliest, a time or given offsets) so that it applies records again; --dry-run shows the plan.", runReplay},
		{"check", "Resolve the tables a configuration file (--config) declares against both databases and print the plan per table; reads no row, writes nothing.", runCheck},
		{"version", "Print the version.", runVersion},
	}
}

func main() {
	// A soft memory limit makes the collector work harder before the heap
	// grows past it, keeping RSS flat whatever the window size. GOMEMLIMIT
	// overrides it.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(160 << 20)
	}
	os.Exit(mainExit(os.Args[1:]))
}

func mainExit(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return mainExit([]string{args[1], "--help"})
		}
		printHelp()
		return exitOK
	}
	for _, sc := range subcommands() {
		if sc.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		finished := make(chan struct{})
		var watcher sync.WaitGroup
		defer func() { stop(); close(finished); watcher.Wait() }()
		watcher.Add(1)
		go func() { // after the first signal, a second one exits at once
			defer watcher.Done()
			select {
			case <-ctx.Done():
			case <-finished:
				return
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sig)
			select {
			case <-sig:
				fmt.Fprintln(os.Stderr, "sluice: second signal, exiting now")
				os.Exit(exitFailed)
			case <-finished:
			}
		}()
		stopProf := startProfiling()
		err := sc.run(ctx, args[1:])
		stopProf()
		code := exitCodeOf(err)
		switch code {
		case exitOK:
		case exitUsage:
			fmt.Fprintf(os.Stderr, "sluice %s: %v\nrun 'sluice %s --help' for its flags\n", sc.name, err, sc.name)
		default:
			fmt.Fprintf(os.Stderr, "sluice %s: %v\n", sc.name, err)
		}
		return code
	}
	fmt.Fprintf(os.Stderr, "sluice: unknown command %q\n\n", args[0])
	printHelp()
	return exitUsage
}

// exitCodeOf maps a command's error onto its exit status. It is the one
// place that does, so the status a notification reports is the process's.
func exitCodeOf(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errMismatch):
		return exitMismatch
	case errors.Is(err, errPartial):
		return exitPartial
	}
	return exitFailed
}

func printHelp() {
	fmt.Println("sluice moves rows from MySQL to MySQL through Kafka: the IoT event log by default, any configured tables with --config.\n\nusage: sluice <command> [flags]\n\ncommands:")
	for _, sc := range subcommands() {
		fmt.Printf("  %-9s %s\n", sc.name, sc.summary)
	}
	fmt.Println("\nEvery flag can also be set by its environment variable, SLUICE_<FLAG> (e.g. SLUICE_SOURCE_DSN).\nRun 'sluice <command> --help' for a command's flags.\nExit status: 0 ok, 1 failed, 2 usage error, 3 verify found differences, 4 partial (run completed, records dead-lettered).")
}

func summaryOf(name string) string {
	for _, sc := range subcommands() {
		if sc.name == name {
			return sc.summary
		}
	}
	return ""
}

// parseOrHelp parses a command's flags, printing its help for --help.
func parseOrHelp(c *command, args []string) error {
	err := c.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.usage(os.Stdout, summaryOf(c.fs.Name()))
	}
	return err
}

func runVersion(_ context.Context, args []string) error {
	c := newCommand("version")
	if err := parseOrHelp(c, args); err != nil {
		return err
	}
	fmt.Println("sluice", versionString())
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return "dev-" + rev
		}
		return bi.Main.Version
	}
	return "dev"
}

func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
