package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// sluice runs the binary under test as child processes.
type sluice struct {
	bin        string
	env        []string          // the children's environment, without the per-child variables
	knobs      map[string]string // the SLUICE_* (and Go runtime) settings passed through, for the report
	profileDir string            // absolute; "" without --profile
	redact     func(string) string
}

// flagsSetByBench are the variables the bench overrides on every command line,
// so passing them through would mislead the report.
var flagsSetByBench = []string{"SLUICE_SOURCE_DSN", "SLUICE_TARGET_DSN", "SLUICE_BROKERS", "SLUICE_TOPIC", "SLUICE_GROUP",
	"SLUICE_START_AT", "SLUICE_END_AT", "SLUICE_METRICS_ADDR", "SLUICE_ROWS"}

// notKnobs are SLUICE_* variables of the stack scripts and the tests: passed
// on (harmless), but no setting of Sluice.
var notKnobs = []string{"SLUICE_STACK_DIR", "SLUICE_MYSQL_PORT", "SLUICE_KAFKA_PORT", "SLUICE_REQUIRE_INTEGRATION"}

func newSluice(bin string, redact func(string) string) (*sluice, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	s := &sluice{bin: abs, knobs: map[string]string{}, redact: redact}
	var ignored []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "SLUICE_BENCH_"), k == "SLUICE_CPUPROFILE", k == "SLUICE_MEMPROFILE":
			continue // the bench's own, or set per child
		case slices.Contains(flagsSetByBench, k):
			ignored = append(ignored, k)
			continue // not passed on: a child given no flag for it (consume, no --source-dsn) must not take the stack's
		case strings.HasPrefix(k, "SLUICE_TEST_"), slices.Contains(notKnobs, k):
		case strings.HasPrefix(k, "SLUICE_"), k == "GOMEMLIMIT", k == "GOGC", k == "GOMAXPROCS", k == "GODEBUG":
			s.knobs[k] = redact(v)
		}
		s.env = append(s.env, kv)
	}
	if len(ignored) > 0 {
		slices.Sort(ignored)
		fmt.Printf("sluice-bench: ignoring %s: the bench sets these itself\n", strings.Join(ignored, ", "))
	}
	if len(s.knobs) > 0 {
		var kv []string
		for k, v := range s.knobs {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		fmt.Printf("sluice-bench: passing to sluice: %s\n", strings.Join(kv, " "))
	}
	return s, nil
}

// outcome is one finished child.
type outcome struct {
	args    []string // as run, with the password hidden
	env     []string // the per-child variables (profile paths)
	seconds float64
	rssKiB  int64
	summary string // the last line sluice printed on stdout
}

// result turns the outcome into a row of the report.
func (o outcome) result(stage, label string, rows int64) result {
	return result{Stage: stage, Label: label, Rows: rows, Seconds: o.seconds, PeakRSSMiB: float64(o.rssKiB) / 1024,
		Args: o.args, Env: o.env, Summary: o.summary}
}

// command builds the child for one step. A non-empty stage names its profiles
// when profiling is on.
func (s *sluice) command(ctx context.Context, stage string, args []string) (*exec.Cmd, *lastLine, outcome) {
	cmd := exec.CommandContext(ctx, s.bin, args...)
	o := outcome{}
	if s.profileDir != "" && stage != "" {
		o.env = []string{"SLUICE_CPUPROFILE=" + filepath.Join(s.profileDir, stage+".cpu.pprof"),
			"SLUICE_MEMPROFILE=" + filepath.Join(s.profileDir, stage+".mem.pprof")}
	}
	cmd.Env = append(slices.Clip(s.env), o.env...)
	for _, a := range args {
		o.args = append(o.args, s.redact(a))
	}
	ll := &lastLine{}
	cmd.Stdout = io.MultiWriter(os.Stdout, ll)
	cmd.Stderr = os.Stderr
	// On interrupt, stop the child as an operator would, then kill it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	fmt.Printf("$ sluice %s\n", shellJoin(o.args))
	return cmd, ll, o
}

// run runs one step to completion and times it from start to exit.
func (s *sluice) run(ctx context.Context, stage string, args ...string) (outcome, error) {
	cmd, ll, o := s.command(ctx, stage, args)
	t0 := time.Now()
	err := cmd.Run()
	o.seconds = time.Since(t0).Seconds()
	o.summary = ll.String()
	o.rssKiB = maxRSS(cmd.ProcessState)
	if err != nil {
		return o, fmt.Errorf("sluice %s: %w", args[0], err)
	}
	return o, nil
}

// consumeUntil starts a long-running step, times it until done returns, then
// stops it with SIGTERM as an operator would and waits for it to exit. A
// child that exits before done returns fails the step.
func (s *sluice) consumeUntil(ctx context.Context, stage string, done func(context.Context) error, args ...string) (outcome, error) {
	cmd, ll, o := s.command(ctx, stage, args)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return o, fmt.Errorf("sluice %s: %w", args[0], err)
	}
	exited := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		exited <- cmd.Wait()
		cancel()
	}()
	err := done(wctx)
	o.seconds = time.Since(t0).Seconds()
	if err != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if werr := <-exited; ctx.Err() == nil {
			return o, fmt.Errorf("sluice %s exited before it caught up (%v): %w", args[0], werr, err)
		}
		return o, err
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return o, fmt.Errorf("sluice %s: stop: %w", args[0], err)
	}
	err = <-exited
	o.summary = ll.String()
	o.rssKiB = maxRSS(cmd.ProcessState)
	if err != nil {
		return o, fmt.Errorf("sluice %s: after SIGTERM: %w", args[0], err)
	}
	return o, nil
}

// maxRSS is the child's peak resident set in KiB (Linux reports ru_maxrss in
// KiB).
func maxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return int64(ru.Maxrss)
	}
	return 0
}

// lastLine keeps the last non-empty line written to it, for the report: it is
// sluice's own summary line.
type lastLine struct{ cur, last []byte }

func (l *lastLine) Write(p []byte) (int, error) {
	for _, c := range p {
		switch {
		case c == '\n':
			if len(bytes.TrimSpace(l.cur)) > 0 {
				l.last = append(l.last[:0], l.cur...)
			}
			l.cur = l.cur[:0]
		case len(l.cur) < 4096:
			l.cur = append(l.cur, c)
		}
	}
	return len(p), nil
}

func (l *lastLine) String() string {
	if len(bytes.TrimSpace(l.cur)) > 0 {
		return strings.TrimSpace(string(l.cur))
	}
	return strings.TrimSpace(string(l.last))
}

// shellJoin quotes args for a command line a reader can paste.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t'\"()$&;|<>*?`\\") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
