package deploy

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
	"github.com/sluice-dev/sluice/tail"
)

// recorder is a Registerer that keeps every collector registered through it,
// so the test can list all metric names (even of vectors with no series yet)
// and touch every vector so that the exposition shows each family.
type recorder struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// exposition is what the sluice processes export, together, built the way
// cmd/sluice builds it: Go and process collectors, then the backfill,
// producer and consumer metrics, with real Kafka clients (producer.New,
// producer.NewDeadLetterWriter, consumer.New) so that kprom registers its sluice_kafka_* families, and the
// tail's metrics (tail.NewMetrics, which is all `sluice tail` adds to the Go
// and process collectors: its Kafka client registers no kprom metrics). The
// clients talk to an in-process kfake broker on loopback; the consumer's
// database is never reached for data (see blankDB).
type exposition struct {
	names map[string]family // every metric family the registries declare
	text  []byte            // GET /metrics, as promhttp serves it
}

// family is what the reference check knows of a metric family: its type,
// known when the family had a series to gather (touch gives every vector one).
type family struct {
	typ   dto.MetricType
	known bool
}

// suffixes are the series names a family exposes besides its own name: a
// histogram's _bucket, _sum and _count, a summary's _sum and _count.
func (f family) suffixes() []string {
	switch {
	case f.known && f.typ == dto.MetricType_HISTOGRAM:
		return []string{"_bucket", "_sum", "_count"}
	case f.known && f.typ == dto.MetricType_SUMMARY:
		return []string{"_sum", "_count"}
	}
	return nil
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func sluiceExposition(t *testing.T) exposition {
	t.Helper()
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	reg := &recorder{Registry: prometheus.NewPedanticRegistry()}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	backfill.NewMetrics(reg)
	tail.NewMetrics(reg)

	pcfg := producer.DefaultConfig()
	pcfg.Brokers, pcfg.Partitions, pcfg.DialTimeout = brokers, 2, 5*time.Second
	p, err := producer.New(ctx, pcfg, reg, log)
	if err != nil {
		t.Fatalf("producer.New: %v", err)
	}
	defer p.Close()
	acked := make(chan error, 1)
	ev := schema.Event{Op: schema.OpCreate, After: &schema.Row{ID: 1, DeviceType: "meter-1", EventType: "status",
		Timestamp: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)}}
	if err := p.Send(ctx, []schema.Event{ev}, func(err error) { acked <- err }); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := <-acked; err != nil {
		t.Fatalf("produce: %v", err)
	}

	// The consumer runs until it has polled the record (setting its lag
	// gauge), and is stopped before its batch is due (Linger), so it never
	// writes. consumer.New checks the target table, so it gets a real,
	// freshly migrated target on the project's MariaDB: the built-in IoT
	// table (cmd/sluice's builtin.yaml), source and target in one database.
	db, database := targetDB(t)
	if err := schema.MigrateSource(ctx, db, database); err != nil {
		t.Fatal(err)
	}
	tbl, err := schema.Resolve(ctx, schema.TableSpec{Source: database + ".raw_records", Target: database + ".records",
		ID: "id", Window: "timestamp", Key: []string{"device_type", "event_type", "timestamp"}, Topic: pcfg.Topic,
		Columns: schema.ColumnsSpec{Include: []string{"id", "date", "timestamp", "device_type", "event_type", "message", "created_at", "updated_at"},
			Rename: map[string]string{"id": "source_id"}}}, db, db, schema.ResolveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ccfg := consumer.DefaultConfig()
	ccfg.Brokers, ccfg.DialTimeout, ccfg.Linger, ccfg.Tables = brokers, 5*time.Second, time.Hour, []*schema.Table{tbl}
	cm := consumer.NewMetrics(reg)
	dw, err := producer.NewDeadLetterWriter(ctx, producer.DeadLetterConfig{Brokers: brokers, Topic: ccfg.DeadLetterTopic(), DialTimeout: 5 * time.Second},
		producer.NewDeadLetterMetrics(reg), log)
	if err != nil {
		t.Fatalf("producer.NewDeadLetterWriter: %v", err)
	}
	defer dw.Close()
	ccfg.DeadLetters = dw
	c, err := consumer.New(ctx, ccfg, db, cm, log)
	if err != nil {
		t.Fatalf("consumer.New: %v", err)
	}
	// The group's lag, from its committed offsets, as run and consume
	// export it (consumer.WatchLag).
	lcl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer lcl.Close()
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		cm.WatchLag(cctx, kadm.NewClient(lcl), ccfg.Group, tbl.Topic, 50*time.Millisecond, 5*time.Second, log)
	}()
	defer func() {
		stop()
		<-lagDone
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); !gathered(reg, "sluice_consumer_lag_records"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the group's lag was not exported within 30s")
		}
	}

	var exp exposition
	exp.names = map[string]family{}
	for _, col := range reg.collectors {
		descs := make(chan *prometheus.Desc, 256)
		go func() { col.Describe(descs); close(descs) }()
		for d := range descs {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				exp.names[m[1]] = family{}
			}
		}
		touch(col)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		exp.names[mf.GetName()] = family{typ: mf.GetType(), known: true}
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}).ServeHTTP(rec,
		httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	exp.text = rec.Body.Bytes()
	return exp
}

// targetDB migrates a fresh target database on the MariaDB that `make test`
// starts (SLUICE_TEST_MYSQL_DSN); without it the check fails under CI and
// skips elsewhere, like every check whose tool is missing.
func targetDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_MYSQL_DSN")
	var db *sql.DB
	err := errors.New("SLUICE_TEST_MYSQL_DSN is not set")
	if dsn != "" {
		if db, err = sql.Open("mysql", dsn+"?parseTime=true&loc=UTC"); err == nil {
			err = db.Ping()
		}
	}
	if err != nil {
		if strict() {
			t.Fatalf("MySQL for the consumer's target: %v", err)
		}
		t.Skipf("MySQL for the consumer's target: %v", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	database := "deploy_metrics_" + hex.EncodeToString(b[:])
	if err := schema.MigrateTarget(t.Context(), db, database); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + database); db.Close() })
	return db, database
}

// gathered reports whether the registry exports a series of the family.
func gathered(g prometheus.Gatherer, name string) bool {
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return true
		}
	}
	return false
}

// touch gives a vector one series, with placeholder label values, so that its
// family appears in the exposition. The label count is found by trying.
func touch(c prometheus.Collector) {
	values := func(n int) []string {
		v := make([]string, n)
		for i := range v {
			v[i] = "0"
		}
		return v
	}
	for n := 1; n <= 6; n++ {
		var err error
		switch v := c.(type) {
		case *prometheus.CounterVec:
			_, err = v.GetMetricWithLabelValues(values(n)...)
		case *prometheus.GaugeVec:
			_, err = v.GetMetricWithLabelValues(values(n)...)
		case *prometheus.HistogramVec:
			var o prometheus.Observer
			if o, err = v.GetMetricWithLabelValues(values(n)...); err == nil {
				o.Observe(0.01)
			}
		default:
			return
		}
		if err == nil {
			return
		}
	}
}

// metricRef matches a Sluice metric name in a PromQL expression.
var metricRef = regexp.MustCompile(`\bsluice_[a-zA-Z0-9_:]*`)

// unknownMetrics returns the sluice_* names that exprs use and that are not
// exported: neither a family name nor one of a histogram's or summary's
// series (_bucket, _sum, _count).
func unknownMetrics(exprs []string, exported map[string]family) []string {
	var unknown []string
	for _, e := range exprs {
		for _, name := range metricRef.FindAllString(e, -1) {
			if !exports(exported, name) && !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		}
	}
	sort.Strings(unknown)
	return unknown
}

func exports(exported map[string]family, name string) bool {
	if _, ok := exported[name]; ok {
		return true
	}
	for base, f := range exported {
		for _, suf := range f.suffixes() {
			if name == base+suf {
				return true
			}
		}
	}
	return false
}

// kpromLint are the lint findings on franz-go's kprom plugin, whose metric
// names Sluice does not choose: its buffered-records gauges end in _total.
// Any other finding, on Sluice's own metrics above all, fails the test.
var kpromLint = regexp.MustCompile(`^sluice_kafka_(producer|consumer)_buffered_(produce|fetch)_records_total non-counter metrics should not have "_total" suffix$`)

// TestExpositionPassesPromtool pipes the exposition of the real registries
// into `promtool check metrics`, which parses it and lints names, types and
// help texts.
func TestExpositionPassesPromtool(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	exp := sluiceExposition(t)
	for _, want := range []string{"sluice_backfill_rows_read_total", "sluice_producer_records_total",
		"sluice_consumer_lag_records", "sluice_kafka_producer_connects_total", "sluice_kafka_consumer_connects_total",
		"sluice_tail_seconds_behind_source", "sluice_tail_events_total", "sluice_tail_binlog_position",
		"sluice_tail_commit_seconds_bucket", "sluice_tail_reconnects_total"} {
		if !strings.Contains(string(exp.text), "\n"+want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	out, err := run(t, "", exp.text, nil, promtool, "check", "metrics")
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 3: // lint findings only
		for _, line := range strings.Split(out, "\n") {
			if !kpromLint.MatchString(strings.TrimSpace(line)) {
				t.Errorf("promtool check metrics: %s", line)
			}
		}
	default:
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestReferencedMetricsAreExported(t *testing.T) {
	exp := sluiceExposition(t)
	root := repoRoot(t)

	t.Run("dashboard", func(t *testing.T) {
		exprs := dashboardExprs(t, readFile(t, root+"/deploy/grafana/sluice.json"))
		if len(exprs) < 8 {
			t.Fatalf("found only %d expressions in the dashboard", len(exprs))
		}
		if u := unknownMetrics(exprs, exp.names); len(u) > 0 {
			t.Errorf("the dashboard uses metrics Sluice does not export: %v", u)
		}
	})
	t.Run("alerts", func(t *testing.T) {
		exprs := ruleExprs(t, readFile(t, root+"/deploy/prometheus/alerts.yml"))
		if u := unknownMetrics(exprs, exp.names); len(u) > 0 {
			t.Errorf("alerts.yml uses metrics Sluice does not export: %v", u)
		}
	})
	// The check itself must be able to fail.
	t.Run("catches unknown names", func(t *testing.T) {
		exprs := []string{
			`sum(rate(sluice_consumer_rows_upserted_total[5m]))`,
			`histogram_quantile(0.99, sum by (le) (rate(sluice_consumer_db_commit_seconds_bucket[5m])))`,
			`sum(sluice_consumer_batch_records_sum) / sum(sluice_consumer_batch_records_count)`,
			`max(sluice_tail_seconds_behind_source) > 60`,
			`histogram_quantile(0.99, sum by (le) (rate(sluice_tail_commit_seconds_bucket[5m])))`,
			`max(sluice_tail_lag_seconds)`,               // not a metric: the tail's is seconds_behind_source
			`sluice_consumer_rows_upserted_total_bucket`, // a counter has no buckets
			`sluice_consumer_lag_records_count`,          // nor does a gauge
		}
		got := unknownMetrics(exprs, exp.names)
		want := []string{"sluice_consumer_lag_records_count", "sluice_consumer_rows_upserted_total_bucket", "sluice_tail_lag_seconds"}
		if !slices.Equal(got, want) {
			t.Errorf("unknownMetrics = %v, want %v", got, want)
		}
	})
	if t.Failed() {
		names := make([]string, 0, len(exp.names))
		for n := range exp.names {
			if strings.HasPrefix(n, "sluice_") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		t.Logf("exported sluice_* metrics:\n  %s", strings.Join(names, "\n  "))
	}
}
