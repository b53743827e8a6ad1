package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the host has installed
)

// clearSluiceEnv unsets every SLUICE_ variable for the test, so that the
// developer's or CI's environment cannot leak into flag parsing.
func clearSluiceEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SLUICE_") {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func wall(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func TestParseWindow(t *testing.T) {
	// 01:30 UTC on 5 March is still 4 March in Los Angeles and already the
	// morning of 5 March in Tokyo.
	now := time.Date(2024, 3, 5, 1, 30, 0, 0, time.UTC)
	tests := []struct {
		name           string
		startAt, endAt string
		tz             string
		now            time.Time
		wantStart      time.Time
		wantEnd        time.Time
		wantErr        []string // parts of the message; nil for success
	}{
		{name: "default yesterday in UTC", tz: "UTC", now: now,
			wantStart: wall(2024, 3, 4, 0, 0, 0), wantEnd: wall(2024, 3, 5, 0, 0, 0)},
		{name: "default yesterday in Los Angeles", tz: "America/Los_Angeles", now: now,
			wantStart: wall(2024, 3, 3, 0, 0, 0), wantEnd: wall(2024, 3, 4, 0, 0, 0)},
		{name: "default yesterday in Tokyo", tz: "Asia/Tokyo", now: time.Date(2024, 3, 4, 20, 0, 0, 0, time.UTC),
			wantStart: wall(2024, 3, 4, 0, 0, 0), wantEnd: wall(2024, 3, 5, 0, 0, 0)},
		{name: "default across a year", tz: "UTC", now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
			wantStart: wall(2023, 12, 31, 0, 0, 0), wantEnd: wall(2024, 1, 1, 0, 0, 0)},
		{name: "default on a DST change day is still 24 wall hours", tz: "America/New_York", now: time.Date(2024, 3, 11, 12, 0, 0, 0, time.UTC),
			wantStart: wall(2024, 3, 10, 0, 0, 0), wantEnd: wall(2024, 3, 11, 0, 0, 0)},
		{name: "date only", startAt: "2024-03-04", endAt: "2024-03-05", tz: "Asia/Tokyo", now: now,
			wantStart: wall(2024, 3, 4, 0, 0, 0), wantEnd: wall(2024, 3, 5, 0, 0, 0)},
		{name: "date and time", startAt: "2024-03-04 06:00:00", endAt: "2024-03-04 18:30:15", tz: "UTC", now: now,
			wantStart: wall(2024, 3, 4, 6, 0, 0), wantEnd: wall(2024, 3, 4, 18, 30, 15)},
		{name: "date T time is a wall clock, not shifted by tz", startAt: "2024-03-04T06:00:00", endAt: "2024-03-04T07:00:00", tz: "America/New_York", now: now,
			wantStart: wall(2024, 3, 4, 6, 0, 0), wantEnd: wall(2024, 3, 4, 7, 0, 0)},
		{name: "RFC 3339 with offset to UTC wall clock", startAt: "2024-03-05T10:00:00+02:00", endAt: "2024-03-06T10:00:00+02:00", tz: "UTC", now: now,
			wantStart: wall(2024, 3, 5, 8, 0, 0), wantEnd: wall(2024, 3, 6, 8, 0, 0)},
		{name: "RFC 3339 with offset to New York wall clock", startAt: "2024-03-05T10:00:00+02:00", endAt: "2024-03-05T12:00:00Z", tz: "America/New_York", now: now,
			wantStart: wall(2024, 3, 5, 3, 0, 0), wantEnd: wall(2024, 3, 5, 7, 0, 0)},
		{name: "RFC 3339 with fraction", startAt: "2024-03-05T00:00:00.5Z", endAt: "2024-03-05T00:00:01Z", tz: "UTC", now: now,
			wantStart: time.Date(2024, 3, 5, 0, 0, 0, 500_000_000, time.UTC), wantEnd: wall(2024, 3, 5, 0, 0, 1)},
		{name: "only start", startAt: "2024-03-04", tz: "UTC", now: now,
			wantErr: []string{"--start-at and --end-at go together", `"2024-03-04"`}},
		{name: "only end", endAt: "2024-03-05", tz: "UTC", now: now,
			wantErr: []string{"--start-at and --end-at go together", `"2024-03-05"`}},
		{name: "malformed start", startAt: "yesterday", endAt: "2024-03-05", tz: "UTC", now: now,
			wantErr: []string{`--start-at "yesterday"`, "not a time"}},
		{name: "malformed end", startAt: "2024-03-04", endAt: "2024-13-45", tz: "UTC", now: now,
			wantErr: []string{`--end-at "2024-13-45"`, "not a time"}},
		{name: "slash date", startAt: "2024/03/04", endAt: "2024-03-05", tz: "UTC", now: now,
			wantErr: []string{`--start-at "2024/03/04"`}},
		{name: "end before start", startAt: "2024-03-05", endAt: "2024-03-04 12:00:00", tz: "UTC", now: now,
			wantErr: []string{"--end-at 2024-03-04 12:00:00", "--start-at 2024-03-05 00:00:00"}},
		{name: "end equal to start", startAt: "2024-03-05", endAt: "2024-03-05 00:00:00", tz: "UTC", now: now,
			wantErr: []string{"--end-at 2024-03-05 00:00:00 is not after --start-at 2024-03-05 00:00:00"}},
		{name: "equal after zone conversion", startAt: "2024-03-05T02:00:00+02:00", endAt: "2024-03-05 00:00:00", tz: "UTC", now: now,
			wantErr: []string{"--end-at", "--start-at"}},
		{name: "unknown tz", startAt: "2024-03-04", endAt: "2024-03-05", tz: "Mars/Olympus_Mons", now: now,
			wantErr: []string{`--tz "Mars/Olympus_Mons"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &options{startAt: tt.startAt, endAt: tt.endAt, tz: tt.tz}
			start, end, err := parseWindow(o, tt.now)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("parseWindow = [%v, %v), want an error", start, end)
				}
				if !isUsage(err) {
					t.Errorf("error %q is not a usage error (exit 2)", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("parseWindow: %v", err)
			}
			if !start.Equal(tt.wantStart) || !end.Equal(tt.wantEnd) {
				t.Errorf("window [%v, %v), want [%v, %v)", start, end, tt.wantStart, tt.wantEnd)
			}
			if start.Location() != time.UTC || end.Location() != time.UTC {
				t.Errorf("window in %v/%v, want wall clocks labelled UTC", start.Location(), end.Location())
			}
		})
	}
}

// newTestCommand builds a command with the flag groups run uses.
func newTestCommand() *command {
	c := newCommand("test")
	c.source()
	c.kafka()
	c.window()
	c.read()
	c.consume()
	c.logging()
	return c
}

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, o *options)
	}{
		{name: "defaults without env", check: func(t *testing.T, o *options) {
			if o.brokers != "127.0.0.1:9092" || o.batchSize != 10000 || o.linger != time.Second || o.startAt != "" {
				t.Errorf("defaults: brokers %q batch %d linger %v start %q", o.brokers, o.batchSize, o.linger, o.startAt)
			}
		}},
		{name: "env used without the flag", env: map[string]string{"SLUICE_BROKERS": "k1:9092,k2:9092"},
			check: func(t *testing.T, o *options) {
				if o.brokers != "k1:9092,k2:9092" {
					t.Errorf("brokers = %q, want the env value", o.brokers)
				}
			}},
		{name: "flag beats env", env: map[string]string{"SLUICE_BROKERS": "env:9092"}, args: []string{"--brokers", "flag:9092"},
			check: func(t *testing.T, o *options) {
				if o.brokers != "flag:9092" {
					t.Errorf("brokers = %q, want the flag value", o.brokers)
				}
			}},
		{name: "flag set to its default still beats env", env: map[string]string{"SLUICE_BATCH_SIZE": "5"}, args: []string{"--batch-size=10000"},
			check: func(t *testing.T, o *options) {
				if o.batchSize != 10000 {
					t.Errorf("batch size = %d, want 10000 from the flag", o.batchSize)
				}
			}},
		{name: "dashes become underscores", env: map[string]string{"SLUICE_SOURCE_DSN": "u:p@tcp(h:1)/db", "SLUICE_CHUNK_SIZE": "77", "SLUICE_LINGER": "250ms"},
			check: func(t *testing.T, o *options) {
				if o.sourceDSN != "u:p@tcp(h:1)/db" || o.chunkSize != 77 || o.linger != 250*time.Millisecond {
					t.Errorf("source dsn %q chunk size %d linger %v", o.sourceDSN, o.chunkSize, o.linger)
				}
			}},
		{name: "env window", env: map[string]string{"SLUICE_START_AT": "2024-03-04", "SLUICE_END_AT": "2024-03-05"},
			check: func(t *testing.T, o *options) {
				if o.startAt != "2024-03-04" || o.endAt != "2024-03-05" {
					t.Errorf("window %q..%q, want the env values", o.startAt, o.endAt)
				}
			}},
		{name: "alias on the command line beats env", env: map[string]string{"SLUICE_START_AT": "2020-01-01", "SLUICE_END_AT": "2020-01-02"},
			args: []string{"-start_at", "2024-03-04", "-end_at=2024-03-05"},
			check: func(t *testing.T, o *options) {
				if o.startAt != "2024-03-04" || o.endAt != "2024-03-05" {
					t.Errorf("window %q..%q, want the aliases' values", o.startAt, o.endAt)
				}
			}},
		{name: "alias for one, env for the other", env: map[string]string{"SLUICE_START_AT": "2020-01-01", "SLUICE_END_AT": "2024-03-05"},
			args: []string{"--start_at", "2024-03-04"},
			check: func(t *testing.T, o *options) {
				if o.startAt != "2024-03-04" || o.endAt != "2024-03-05" {
					t.Errorf("window %q..%q, want start from the alias and end from env", o.startAt, o.endAt)
				}
			}},
		{name: "canonical flag beats env", env: map[string]string{"SLUICE_START_AT": "2020-01-01"}, args: []string{"--start-at", "2024-03-04"},
			check: func(t *testing.T, o *options) {
				if o.startAt != "2024-03-04" {
					t.Errorf("start %q, want the flag value", o.startAt)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSluiceEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := newTestCommand()
			if err := c.parse(tt.args); err != nil {
				t.Fatalf("parse(%q): %v", tt.args, err)
			}
			tt.check(t, c.o)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr []string
	}{
		{name: "bad int env", env: map[string]string{"SLUICE_BATCH_SIZE": "abc"}, wantErr: []string{"SLUICE_BATCH_SIZE", `"abc"`}},
		{name: "bad duration env", env: map[string]string{"SLUICE_LINGER": "5"}, wantErr: []string{"SLUICE_LINGER", `"5"`}},
		{name: "negative uint env", env: map[string]string{"SLUICE_CHUNK_SIZE": "-1"}, wantErr: []string{"SLUICE_CHUNK_SIZE"}},
		{name: "positional argument", args: []string{"--brokers", "b:1", "extra"}, wantErr: []string{`unexpected argument "extra"`}},
		{name: "unknown flag", args: []string{"--no-such-flag"}, wantErr: []string{"no-such-flag"}},
		{name: "bad flag value", args: []string{"--batch-size", "many"}, wantErr: []string{"batch-size"}},
		{name: "flag without value", args: []string{"--brokers"}, wantErr: []string{"brokers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSluiceEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			err := newTestCommand().parse(tt.args)
			if err == nil {
				t.Fatalf("parse(%q) = nil, want an error", tt.args)
			}
			if !isUsage(err) {
				t.Errorf("error %q is not a usageError", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseBadEnvIgnoredWhenFlagGiven(t *testing.T) {
	clearSluiceEnv(t)
	t.Setenv("SLUICE_BATCH_SIZE", "abc")
	c := newTestCommand()
	if err := c.parse([]string{"--batch-size", "42"}); err != nil {
		t.Fatalf("parse: %v (the env var should not be read when the flag is given)", err)
	}
	if c.o.batchSize != 42 {
		t.Errorf("batch size = %d, want 42", c.o.batchSize)
	}
}

func TestParseHelp(t *testing.T) {
	clearSluiceEnv(t)
	for _, arg := range []string{"-h", "--help"} {
		err := newTestCommand().parse([]string{arg})
		if !errors.Is(err, flag.ErrHelp) || isUsage(err) {
			t.Errorf("parse(%s) = %v, want flag.ErrHelp and no usage error", arg, err)
		}
	}
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"brokers": "SLUICE_BROKERS", "source-dsn": "SLUICE_SOURCE_DSN", "start-at": "SLUICE_START_AT",
		"max-buffered-records": "SLUICE_MAX_BUFFERED_RECORDS",
	} {
		if got := envName(flagName); got != want {
			t.Errorf("envName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "one", in: "a:1", want: []string{"a:1"}},
		{name: "spaces and empties", in: " a:1 ,, b:2 ,", want: []string{"a:1", "b:2"}},
		{name: "empty", in: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitList(tt.in)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("splitList(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// captureStderr runs f with os.Stderr going to a pipe and returns what f
// wrote there.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stderr = saved }()
	f()
	w.Close()
	return <-done
}

func TestMainExit(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		want   int
		stderr string // part of what mainExit reports, if anything
	}{
		{name: "unknown command", args: []string{"nosuchcmd"}, want: exitUsage, stderr: `unknown command "nosuchcmd"`},
		{name: "help", args: []string{"help"}, want: exitOK},
		{name: "no arguments", args: nil, want: exitOK},
		{name: "--help", args: []string{"--help"}, want: exitOK},
		{name: "help for a command", args: []string{"help", "run"}, want: exitOK},
		{name: "command --help", args: []string{"backfill", "--help"}, want: exitOK},
		{name: "run with a malformed window", args: []string{"run", "--start-at", "x", "--end-at", "y"}, want: exitUsage, stderr: `sluice run: --start-at "x": not a time`},
		{name: "run with the window backwards", args: []string{"run", "--start-at", "2024-03-05", "--end-at", "2024-03-04"}, want: exitUsage, stderr: "is not after --start-at"},
		{name: "run with half a window", args: []string{"run", "--start-at", "2024-03-05"}, want: exitUsage, stderr: "go together"},
		{name: "backfill with a bad flag", args: []string{"backfill", "--no-such-flag"}, want: exitUsage, stderr: "no-such-flag"},
		{name: "consume with no members", args: []string{"consume", "--consumers", "0"}, want: exitUsage, stderr: "--consumers 0: must be at least 1"},
		{name: "consume with a tiny fetch", args: []string{"consume", "--fetch-max-bytes", "100"}, want: exitUsage, stderr: "--fetch-max-bytes 100: must be between"},
		{name: "run with a tiny fetch", args: []string{"run", "--fetch-max-bytes", "100"}, want: exitUsage, stderr: "--fetch-max-bytes 100: must be between"},
		{name: "consume with a bad log level", args: []string{"consume", "--log-level", "loud"}, want: exitUsage, stderr: `--log-level "loud"`},
		{name: "version with an argument", args: []string{"version", "extra"}, want: exitUsage, stderr: `unexpected argument "extra"`},
		{name: "version", args: []string{"version"}, want: exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSluiceEnv(t)
			var got int
			stderr := captureStderr(t, func() { got = mainExit(tt.args) })
			if got != tt.want {
				t.Errorf("mainExit(%q) = %d, want %d; stderr:\n%s", tt.args, got, tt.want, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("mainExit(%q) stderr %q does not contain %q", tt.args, stderr, tt.stderr)
			}
		})
	}
}

func TestMainExitBadEnv(t *testing.T) {
	clearSluiceEnv(t)
	t.Setenv("SLUICE_BATCH_SIZE", "abc")
	var got int
	stderr := captureStderr(t, func() { got = mainExit([]string{"run", "--start-at", "2024-03-04", "--end-at", "2024-03-05"}) })
	if got != exitUsage || !strings.Contains(stderr, "SLUICE_BATCH_SIZE") {
		t.Errorf("mainExit with SLUICE_BATCH_SIZE=abc = %d, stderr %q; want %d naming the variable", got, stderr, exitUsage)
	}
}
