package consumer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testDSNParams are the session settings of Sluice's own pools (cmd/sluice's openDB).
const testDSNParams = "?parseTime=true&loc=UTC&interpolateParams=true&time_zone=%27%2B00%3A00%27"

// servers returns the project's MariaDB (an admin connection with no default
// database) and the kfake broker, as `make test` starts them; with
// SLUICE_REQUIRE_INTEGRATION=1 or CI=true, missing servers fail the test.
func servers(t testing.TB) (*sql.DB, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	required := os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true"
	dsn, brokers := os.Getenv("SLUICE_TEST_MYSQL_DSN"), os.Getenv("SLUICE_TEST_BROKERS")
	var problem error
	if dsn == "" || brokers == "" {
		problem = errors.New("SLUICE_TEST_MYSQL_DSN and SLUICE_TEST_BROKERS are not set")
	} else if c, err := net.DialTimeout("tcp", brokers, 3*time.Second); err != nil {
		problem = fmt.Errorf("kafka broker %s unreachable: %w", brokers, err)
	} else {
		c.Close()
	}
	var db *sql.DB
	if problem == nil {
		var err error
		db, err = sql.Open("mysql", dsn+testDSNParams)
		if err == nil {
			err = db.Ping()
		}
		if err != nil {
			problem = fmt.Errorf("MySQL %s unreachable: %w", dsn, err)
		}
	}
	if problem != nil {
		if required {
			t.Fatal(problem)
		}
		t.Skip(problem)
	}
	t.Cleanup(func() { db.Close() })
	return db, brokers
}

// world is one test's slice of the shared broker: a topic and a group of
// its own, and a client to produce with.
type world struct {
	t            *testing.T
	ctx          context.Context
	brokers      string
	topic, group string
	kcl          *kgo.Client
	adm          *kadm.Client
}

func newWorld(t *testing.T, brokers, prefix string, partitions int32) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	w := &world{t: t, ctx: ctx, brokers: brokers,
		topic: strings.ReplaceAll(prefix, "_", ".") + "." + id, group: strings.ReplaceAll(prefix, "_", "-") + "-" + id}
	var err error
	if w.kcl, err = kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(w.topic)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.kcl.Close)
	w.adm = kadm.NewClient(w.kcl)
	if _, err := w.adm.CreateTopic(ctx, partitions, -1, nil, w.topic); err != nil {
		t.Fatal(err)
	}
	return w
}

// testDeadLetters writes dead letters and re-drives them with a plain
// client: the producer's writer (producer.DeadLetterWriter, which consumer
// may not import) without its reference fallback, so a dead letter the
// topic refuses fails Send. The producer's tests and cmd/sluice's cover
// the writer itself.
type testDeadLetters struct{ cl *kgo.Client }

// newTestDeadLetters creates the dead-letter topic, as the producer's writer
// does, and a client to write to it.
func newTestDeadLetters(t testing.TB, brokers, dlqTopic string) *testDeadLetters {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	resp, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, -1, nil, dlqTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create dead-letter topic %s: %v", dlqTopic, err)
	}
	return &testDeadLetters{cl: cl}
}

func (d *testDeadLetters) Send(ctx context.Context, dead []*kgo.Record, acked func(*kgo.Record)) error {
	for _, res := range d.cl.ProduceSync(ctx, dead...) {
		if res.Err != nil {
			return fmt.Errorf("dead-letter record %s to %s: %w", coordinates(res.Record), res.Record.Topic, res.Err)
		}
		acked(res.Record)
	}
	return nil
}

func (d *testDeadLetters) Resend(ctx context.Context, recs []*kgo.Record) error {
	return d.cl.ProduceSync(ctx, recs...).FirstErr()
}
