package main

import (
	"context"
	"database/sql"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is one measured step: a row of the table and of the JSON.
type result struct {
	Stage         string   `json:"stage"` // seed, ceiling, ceiling_rerun, run, rerun, backfill, consume
	Label         string   `json:"label"`
	Rows          int64    `json:"rows"`
	Seconds       float64  `json:"seconds"`
	RowsPerSecond float64  `json:"rows_per_second"`
	RatioTo       string   `json:"ratio_to,omitempty"` // the stage the ratio compares with
	Ratio         float64  `json:"ratio,omitempty"`
	PeakRSSMiB    float64  `json:"peak_rss_mib,omitempty"` // 0: no process of its own (the ceiling runs in the server)
	Args          []string `json:"sluice_args,omitempty"`
	Env           []string `json:"sluice_env,omitempty"`
	Summary       string   `json:"sluice_summary,omitempty"`
	SQL           string   `json:"sql,omitempty"`
	Note          string   `json:"note,omitempty"`
}

// report is everything one invocation writes: the figures and what they were
// measured on.
type report struct {
	Time          time.Time         `json:"time"`
	Table         string            `json:"table"`  // --table: iot, iot-config or mixed
	Layout        string            `json:"layout"` // --layout: default or earlier (the IoT tables' DDL)
	Rows          int               `json:"rows"`
	Window        [2]string         `json:"window"`
	GoVersion     string            `json:"go_version"` // the toolchain that built the sluice binary
	NProc         int               `json:"nproc"`
	GitCommit     string            `json:"git_commit"`
	SluiceBinary  string            `json:"sluice_binary"`
	MySQLVersion  string            `json:"mysql_version"`
	MySQLSettings map[string]string `json:"mysql_settings"` // the server settings the figures depend on
	MySQLDSN      string            `json:"mysql_dsn"`
	Brokers       string            `json:"brokers"`
	Profile       bool              `json:"profile"` // profiling was on: timings include its overhead
	Env           map[string]string `json:"env"`     // SLUICE_* and Go runtime settings passed to every sluice child
	LoadAvgBefore string            `json:"loadavg_before"`
	LoadAvgAfter  string            `json:"loadavg_after"`
	Seconds       float64           `json:"seconds"` // the whole invocation
	Results       []result          `json:"results"`
}

func (b *bench) newReport(ctx context.Context, profile bool) *report {
	r := &report{
		Time:          time.Now().UTC().Truncate(time.Second),
		Table:         b.table,
		Layout:        b.layout,
		Rows:          b.rows,
		Window:        [2]string{windowStart, windowEnd},
		GoVersion:     runtime.Version(),
		NProc:         runtime.NumCPU(),
		GitCommit:     gitCommit(),
		SluiceBinary:  b.sluice.bin,
		MySQLDSN:      redactDSN(b.base),
		Brokers:       b.brokers,
		Profile:       profile,
		Env:           b.sluice.knobs,
		LoadAvgBefore: loadAvg(),
	}
	if bi, err := buildinfo.ReadFile(b.sluice.bin); err == nil {
		r.GoVersion = bi.GoVersion
	}
	if err := b.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&r.MySQLVersion); err != nil {
		r.MySQLVersion = "unknown: " + err.Error()
	}
	r.MySQLSettings = map[string]string{}
	for _, name := range benchSettings {
		var v sql.NullString
		if err := b.db.QueryRowContext(ctx, "SELECT @@GLOBAL."+name).Scan(&v); err != nil {
			v.String = "unknown: " + err.Error()
		}
		r.MySQLSettings[name] = v.String
	}
	return r
}

// benchSettings are the server settings a reader of the figures needs: the
// buffer pool (whether the target fits in memory), the bulk load's two
// (consumer/load.go), and the durability ones that set each commit's cost.
var benchSettings = []string{"innodb_buffer_pool_size", "innodb_autoinc_lock_mode", "local_infile",
	"innodb_flush_log_at_trx_commit", "sync_binlog", "binlog_format"}

func (r *report) finish(results []result) {
	r.Results = results
	r.LoadAvgAfter = loadAvg()
	r.Seconds = time.Since(r.Time).Seconds()
}

// printTable prints the figures as a Markdown table, aligned so it reads in a
// terminal and pastes into the README as is.
func (r *report) printTable(w io.Writer) {
	rows := [][]string{{"stage", "rows", "seconds", "rows/s", "ratio to ceiling", "peak RSS MiB"}}
	for _, x := range r.Results {
		secs, rate, ratio, rss := "-", "-", "", "-"
		if x.Seconds > 0 {
			secs, rate = fmt.Sprintf("%.2f", x.Seconds), thousands(int64(x.RowsPerSecond+0.5))
		}
		if x.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", x.Ratio)
			if x.RatioTo == "ceiling_rerun" {
				ratio += " (re-run)"
			}
		}
		if x.PeakRSSMiB > 0 {
			rss = fmt.Sprintf("%.0f", x.PeakRSSMiB)
		}
		rows = append(rows, []string{x.Label, thousands(x.Rows), secs, rate, ratio, rss})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		var sb strings.Builder
		sb.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				sb.WriteString(" " + c + pad + " |")
			} else {
				sb.WriteString(" " + pad + c + " |")
			}
		}
		fmt.Fprintln(w, sb.String())
	}
	fmt.Fprintf(w, "\nsluice-bench --table %s --layout %s: %s rows, window [%s, %s), %d CPUs, %s, %s, commit %s\n\n",
		r.Table, r.Layout, thousands(int64(r.Rows)), r.Window[0], r.Window[1], r.NProc, r.GoVersion, r.MySQLVersion, r.GitCommit)
	line(rows[0])
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n-1) + ":"
		if i == 0 {
			sep[i] = strings.Repeat("-", n)
		}
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
	fmt.Fprintln(w, "\nRatios: first loads against the ceiling into an empty target; re-runs against the ceiling's re-run into the full one.")
	if len(r.Env) > 0 {
		var kv []string
		for k, v := range r.Env {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		fmt.Fprintf(w, "Settings passed to sluice: %s\n", strings.Join(kv, " "))
	}
	if r.Profile {
		fmt.Fprintln(w, "Profiling was on: the Sluice timings include the profilers' overhead.")
	}
	fmt.Fprintf(w, "Load average before %s, after %s (2-core machine shared with other work: read odd figures with that in mind).\n",
		r.LoadAvgBefore, r.LoadAvgAfter)
}

// write writes the report as <time>-<rows>.json and latest-<rows>.json, with
// the table after the rows for another table than the default (iot), and
// the layout after that for another layout than the default:
// <time>-<rows>-mixed.json, latest-<rows>-iot-config-earlier.json.
func (r *report) write(dir string) ([]string, error) {
	name := fmt.Sprint(r.Rows)
	if r.Table != tableIoT {
		name += "-" + r.Table
	}
	if r.Layout != layoutDefault {
		name += "-" + r.Layout
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	paths := []string{
		filepath.Join(dir, fmt.Sprintf("%s-%s.json", r.Time.Format("20060102T150405Z"), name)),
		filepath.Join(dir, fmt.Sprintf("latest-%s.json", name)),
	}
	for _, p := range paths {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += "-dirty"
	}
	return commit
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var sb strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			sb.WriteByte(',')
		}
		sb.WriteRune(c)
	}
	if neg {
		return "-" + sb.String()
	}
	return sb.String()
}
