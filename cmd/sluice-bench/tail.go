package main

// The tail benchmark (make bench-tail, --tail-rate): how long a row takes from
// its commit in the source to its commit in the target with `sluice tail` and
// `sluice consume` running, at a steady insert rate; and how many events per
// second the tail alone streams from a binlog backlog.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

const (
	tailSourceDB = "bench_tail_source"
	tailTargetDB = "bench_tail_target"
	// tailConsumers is the group members `sluice consume` runs (its
	// default, named so the bench keeps it): two members commit their
	// batches in any order, which the observer must see through.
	tailConsumers = 2
)

// tailReport is what the tail benchmark writes to
// bench/results/tail-<time>.json and latest-tail.json.
type tailReport struct {
	Time          time.Time         `json:"time"`
	GitCommit     string            `json:"git_commit"`
	Env           map[string]string `json:"env"`
	LoadAvgBefore string            `json:"loadavg_before"`
	LoadAvgAfter  string            `json:"loadavg_after"`

	// Latency: from the return of a row's source COMMIT to its sighting
	// in the target, which is polled every PollMs by source id (so each
	// figure is late by up to PollMs plus a poll round, at most MaxPollMs).
	// The target commit lies between the row's loaded_at (the consumer's
	// clock when it wrote the batch, before its commit: Loaded*) and the
	// sighting. Rows is every row the writers committed, Seen those
	// observed in the target: the bench fails unless they are equal.
	Rate         int     `json:"rate_rows_per_second"`
	Writers      int     `json:"source_connections"`
	Consumers    int     `json:"consumer_members"`
	RowsPerTx    int     `json:"rows_per_source_transaction"`
	Seconds      float64 `json:"seconds"`
	Rows         int     `json:"rows"`
	AchievedRate float64 `json:"achieved_rows_per_second"`
	PollMs       int     `json:"poll_ms"`
	P50Ms        float64 `json:"p50_ms"`
	P90Ms        float64 `json:"p90_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	Seen         int     `json:"rows_seen"`
	MaxPollMs    float64 `json:"max_poll_round_ms"`
	LoadedP50Ms  float64 `json:"loaded_at_p50_ms"`
	LoadedP99Ms  float64 `json:"loaded_at_p99_ms"`
	LoadedMaxMs  float64 `json:"loaded_at_max_ms"`
	TailRSSMiB   float64 `json:"tail_peak_rss_mib"`
	ConsumeRSS   float64 `json:"consume_peak_rss_mib"`

	// Throughput of the tail alone, from a backlog of BacklogRows inserts.
	BacklogRows     int     `json:"backlog_rows"`
	BacklogSeconds  float64 `json:"backlog_seconds"`
	EventsPerSecond float64 `json:"tail_events_per_second"`
	BacklogRSSMiB   float64 `json:"backlog_tail_peak_rss_mib"`
}

// tailBench measures both and writes the report.
func (b *bench) tailBench(ctx context.Context, rate, perTx int, dur time.Duration, backlog, conns int, aim time.Duration, resultsDir string) error {
	rep := &tailReport{Time: time.Now().UTC().Truncate(time.Second), GitCommit: gitCommit(), Env: b.sluice.knobs,
		LoadAvgBefore: loadAvg(), Rate: rate, RowsPerTx: perTx, Writers: conns, PollMs: 5, BacklogRows: backlog}
	for _, db := range []string{tailSourceDB, tailTargetDB} {
		if err := b.dropDatabase(ctx, db); err != nil {
			return err
		}
	}
	if _, err := b.sluice.run(ctx, "", "migrate", "--source-dsn", b.dsn(tailSourceDB), "--target-dsn", b.dsn(tailTargetDB)); err != nil {
		return err
	}
	// The observer finds rows by their source id (tailLatency): an index
	// of the bench's own, so each poll reads only the rows not yet seen.
	if _, err := b.db.ExecContext(ctx, "ALTER TABLE "+tailTargetDB+".records ADD INDEX bench_source_id (source_id)"); err != nil {
		return fmt.Errorf("bench index on %s.records(source_id): %w", tailTargetDB, err)
	}
	if err := b.tailLatency(ctx, rep, dur); err != nil {
		return err
	}
	if err := b.tailBacklog(ctx, rep); err != nil {
		return err
	}
	rep.LoadAvgAfter = loadAvg()
	fmt.Printf("\nsluice-bench tail: commit %s\n\n", rep.GitCommit)
	fmt.Printf("| source commit → target row seen | rows seen | rows/s | p50 ms | p90 ms | p99 ms | max ms | tail RSS MiB | consume RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Printf("| %d rows/s, %d rows per source transaction, %d connections, %d consumer members | %s of %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n",
		rate, perTx, rep.Writers, rep.Consumers, thousands(int64(rep.Seen)), thousands(int64(rep.Rows)), rep.AchievedRate, rep.P50Ms, rep.P90Ms, rep.P99Ms, rep.MaxMs, rep.TailRSSMiB, rep.ConsumeRSS)
	fmt.Printf("\nTo the rows' loaded_at (written before the target commit, so a lower bound): p50 %.0f ms, p99 %.0f ms, max %.0f ms.\n",
		rep.LoadedP50Ms, rep.LoadedP99Ms, rep.LoadedMaxMs)
	fmt.Printf("\n| tail alone, binlog backlog | events | seconds | events/s | peak RSS MiB |\n|---|---:|---:|---:|---:|\n")
	fmt.Printf("| %s single-row inserts | %s | %.2f | %s | %.0f |\n", thousands(int64(backlog)), thousands(int64(backlog)),
		rep.BacklogSeconds, thousands(int64(rep.EventsPerSecond)), rep.BacklogRSSMiB)
	fmt.Printf("\nRows are seen by polling the target by source id every %d ms (the longest poll round took %.0f ms). Load average before %s, after %s.\n",
		rep.PollMs, rep.MaxPollMs, rep.LoadAvgBefore, rep.LoadAvgAfter)
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	var paths []string
	for _, name := range []string{"tail-" + rep.Time.Format("20060102T150405Z") + ".json", "latest-tail.json"} {
		p := filepath.Join(resultsDir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		paths = append(paths, p)
	}
	fmt.Printf("wrote %s\n", strings.Join(paths, " and "))
	if rep.AchievedRate < 0.95*float64(rate) {
		fmt.Printf("sluice-bench tail: the writers reached %.0f of the %d rows/s asked (is the machine busy? load average %s)\n", rep.AchievedRate, rate, rep.LoadAvgAfter)
	}
	if !b.keep {
		for _, db := range []string{tailSourceDB, tailTargetDB} {
			if err := b.dropDatabase(ctx, db); err != nil {
				return err
			}
		}
	}
	if aim > 0 && rep.P99Ms > float64(aim.Milliseconds()) {
		return fmt.Errorf("tail latency p99 %.0f ms is above the aim of --tail-p99-aim %v", rep.P99Ms, aim)
	}
	return nil
}

// child is a long-running sluice process with a metrics endpoint.
type child struct {
	cmd     *exec.Cmd
	metrics string // http://addr/metrics
	exited  chan error
}

func (b *bench) startChild(ctx context.Context, args ...string) (*child, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd, _, _ := b.sluice.command(ctx, "", append(args, "--metrics-addr", addr))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sluice %s: %w", args[0], err)
	}
	c := &child{cmd: cmd, metrics: "http://" + addr + "/metrics", exited: make(chan error, 1)}
	go func() { c.exited <- cmd.Wait() }()
	// Ready once /readyz answers 200: connected to the database and Kafka.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case err := <-c.exited:
			return nil, fmt.Errorf("sluice %s exited before it was ready: %v", args[0], err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return nil, fmt.Errorf("sluice %s: not ready within a minute", args[0])
		}
	}
}

// stop sends SIGTERM, waits, and returns the peak RSS in MiB.
func (c *child) stop() (float64, error) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	err := <-c.exited
	return float64(maxRSS(c.cmd.ProcessState)) / 1024, err
}

// metric sums the samples of one metric name on the child's /metrics.
func (c *child) metric(name string) (float64, error) {
	resp, err := http.Get(c.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

// tailLatency inserts at the rate for dur with tail and consume running, and
// observes each row's arrival in the target.
func (b *bench) tailLatency(ctx context.Context, rep *tailReport, dur time.Duration) error {
	topic := b.name("tail")
	defer b.forget(ctx, topic)
	common := []string{"--brokers", b.brokers, "--topic", topic}
	tl, err := b.startChild(ctx, append([]string{"tail", "--source-dsn", b.dsn(tailSourceDB), "--from", "now", "--tail-name", topic}, common...)...)
	if err != nil {
		return err
	}
	rep.Consumers = tailConsumers
	cons, err := b.startChild(ctx, append([]string{"consume", "--target-dsn", b.dsn(tailTargetDB), "--group", topic,
		"--consumers", strconv.Itoa(tailConsumers)}, common...)...)
	if err != nil {
		_, _ = tl.stop()
		return err
	}

	// The observer polls the target for the committed rows not seen yet,
	// by their source ids (observe.go).
	obs := newObserver(b.db, tailTargetDB+".records")
	octx, stopObserver := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Duration(rep.PollMs) * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-octx.Done():
				return
			case <-tick.C:
			}
			if err := obs.poll(octx); err != nil && octx.Err() == nil {
				fmt.Fprintf(os.Stderr, "sluice-bench: %v\n", err)
			}
		}
	}()
	stopAll := func() {
		stopObserver()
		wg.Wait()
		_, _ = tl.stop()
		_, _ = cons.stop()
	}

	// The writers: rate rows a second in all, perTx rows per INSERT (one
	// transaction each), on a fixed schedule of slots dealt round-robin to
	// the connections (one per 500 transactions/s, at least four, so a
	// commit's round trip does not cap the rate), as several devices'
	// gateways would write. Row n of the schedule gets source id n+1 from the
	// writer, not from auto-increment (the stack's innodb_autoinc_lock_mode
	// 2 may interleave a multi-row insert's ids with another's), so the
	// observer knows every committed id.
	writers := rep.Writers
	if writers == 0 {
		writers = max(4, (rep.Rate/rep.RowsPerTx+499)/500)
	}
	rep.Writers = writers
	b.db.SetMaxOpenConns(writers + 2)
	start := time.Now()
	interval := time.Duration(float64(time.Second) * float64(rep.RowsPerTx) / float64(rep.Rate))
	slots := int(dur / interval)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wwg sync.WaitGroup
	werrs := make(chan error, writers)
	for w := range writers {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			var stmt strings.Builder
			for i := w; i < slots; i += writers {
				if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
					time.Sleep(wait)
				}
				stmt.Reset()
				stmt.WriteString("INSERT INTO " + tailSourceDB + ".raw_records (id, date, timestamp, device_type, event_type, message) VALUES ")
				for j := range rep.RowsPerTx {
					n := i*rep.RowsPerTx + j
					ts := base.Add(time.Duration(n) * time.Second)
					if j > 0 {
						stmt.WriteByte(',')
					}
					fmt.Fprintf(&stmt, "(%d,'%s','%s','bench-dev-%d','latency','row %d')", n+1, ts.Format(time.DateOnly), ts.Format(time.DateTime), n%50, n)
				}
				if _, err := b.db.ExecContext(ctx, stmt.String()); err != nil {
					werrs <- fmt.Errorf("source insert of ids %d-%d: %w", i*rep.RowsPerTx+1, (i+1)*rep.RowsPerTx, err)
					return
				}
				obs.committed(uint64(i*rep.RowsPerTx+1), rep.RowsPerTx, time.Now())
			}
		}()
	}
	wwg.Wait()
	close(werrs)
	if err := <-werrs; err != nil {
		stopAll()
		return err
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Rows, _ = obs.counts()
	rep.AchievedRate = float64(rep.Rows) / rep.Seconds
	const within = 2 * time.Minute
	deadline := time.Now().Add(within)
	for {
		if _, missing := obs.counts(); missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			stopAll()
			return obs.missingErr(within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopObserver()
	wg.Wait()
	if rep.TailRSSMiB, err = tl.stop(); err != nil {
		return fmt.Errorf("sluice tail: %w", err)
	}
	if rep.ConsumeRSS, err = cons.stop(); err != nil {
		return fmt.Errorf("sluice consume: %w", err)
	}
	seen, loaded := obs.latencies()
	rep.Seen = len(seen)
	rep.MaxPollMs = float64(obs.maxPoll.Microseconds()) / 1000
	pct := func(d []float64, p float64) float64 { return d[min(len(d)-1, int(p*float64(len(d))))] }
	rep.P50Ms, rep.P90Ms, rep.P99Ms, rep.MaxMs = pct(seen, 0.50), pct(seen, 0.90), pct(seen, 0.99), seen[len(seen)-1]
	if len(loaded) > 0 {
		rep.LoadedP50Ms, rep.LoadedP99Ms, rep.LoadedMaxMs = pct(loaded, 0.50), pct(loaded, 0.99), loaded[len(loaded)-1]
	}
	return nil
}

// tailBacklog writes BacklogRows single-row inserts with no tail running,
// then times a tail that starts before them until it has committed them all.
func (b *bench) tailBacklog(ctx context.Context, rep *tailReport) error {
	var file string
	var pos uint64
	var err error
	for _, q := range schema.BinlogStatusQueries {
		var ok bool
		if file, pos, ok, err = schema.BinlogStatus(ctx, b.db, q); err == nil {
			if !ok {
				err = errors.New("the server has no binlog (is log_bin on?)")
			}
			break
		}
	}
	if err != nil {
		return fmt.Errorf("binlog position: %w", err)
	}
	fmt.Printf("sluice-bench: writing a backlog of %s single-row inserts\n", thousands(int64(rep.BacklogRows)))
	q := "INSERT INTO " + tailSourceDB + ".raw_records (date, timestamp, device_type, event_type, message) VALUES (?, ?, ?, 'backlog', ?)"
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < rep.BacklogRows; i += 4 {
				ts := base.Add(time.Duration(i) * time.Second)
				if _, err := b.db.ExecContext(ctx, q, ts.Format(time.DateOnly), ts, "bench-dev-"+strconv.Itoa(i%50), "backlog row "+strconv.Itoa(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("backlog insert: %w", err)
	}
	topic := b.name("tail-backlog")
	defer b.forget(ctx, topic)
	t0 := time.Now()
	tl, err := b.startChild(ctx, "tail", "--source-dsn", b.dsn(tailSourceDB), "--from", fmt.Sprintf("%s:%d", file, pos),
		"--tail-name", topic, "--brokers", b.brokers, "--topic", topic)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		v, err := tl.metric("sluice_tail_events_total")
		if err == nil && int(v) >= rep.BacklogRows {
			break
		}
		if time.Now().After(deadline) {
			_, _ = tl.stop()
			return fmt.Errorf("tail streamed %v of %d backlog events in 10 minutes", v, rep.BacklogRows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rep.BacklogSeconds = time.Since(t0).Seconds()
	rep.EventsPerSecond = float64(rep.BacklogRows) / rep.BacklogSeconds
	if rep.BacklogRSSMiB, err = tl.stop(); err != nil {
		return fmt.Errorf("sluice tail: %w", err)
	}
	return nil
}
