package producer

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// brokers returns the test broker (kfake as a separate process, started by
// `make test`); with SLUICE_REQUIRE_INTEGRATION=1 or CI=true a missing broker
// fails the test.
func brokers(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	required := os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true"
	b := os.Getenv("SLUICE_TEST_BROKERS")
	var err error
	if b != "" {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", b, 3*time.Second); err == nil {
			c.Close()
		}
	}
	if b == "" || err != nil {
		if required {
			t.Fatalf("kafka broker %q unreachable: %v (SLUICE_TEST_BROKERS)", b, err)
		}
		t.Skipf("kafka broker %q unreachable: %v (set by `make test`)", b, err)
	}
	return b
}

func TestIntegrationState(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers, cfg.DialTimeout = []string{brokers(t)}, 10*time.Second
	var id [4]byte
	_, _ = rand.Read(id[:])
	cfg.Topic = "it.state." + hex.EncodeToString(id[:])
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)

	st, err := OpenState(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Topic() != cfg.Topic+".progress" {
		t.Errorf("state topic %s, want %s.progress", st.Topic(), cfg.Topic)
	}

	adm := kadm.NewClient(st.cl)
	td, err := adm.ListTopics(ctx, st.Topic())
	if err != nil || td.Error() != nil {
		t.Fatalf("list topics: %v %v", err, td.Error())
	}
	if n := len(td[st.Topic()].Partitions); n != 1 {
		t.Errorf("state topic has %d partitions, want 1 (one order for all keys)", n)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, st.Topic())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(st.Topic(), nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}

	get := func(key string) (string, bool) {
		t.Helper()
		v, ok, err := st.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%s): %v", key, err)
		}
		return string(v), ok
	}
	steps := []struct {
		name  string
		put   map[string]string // "" is a tombstone
		check map[string]string // key -> value, "" for absent
	}{
		{name: "empty topic", check: map[string]string{"a": ""}},
		{name: "two keys", put: map[string]string{"a": "1", "b": "x"}, check: map[string]string{"a": "1", "b": "x", "c": ""}},
		{name: "the last value wins", put: map[string]string{"a": "2"}, check: map[string]string{"a": "2", "b": "x"}},
		{name: "a tombstone deletes", put: map[string]string{"a": ""}, check: map[string]string{"a": "", "b": "x"}},
		{name: "set again after a tombstone", put: map[string]string{"a": "3"}, check: map[string]string{"a": "3"}},
	}
	for _, s := range steps {
		for k, v := range s.put {
			if err := st.Put(ctx, k, []byte(v)); err != nil {
				t.Fatalf("%s: Put(%s): %v", s.name, k, err)
			}
		}
		for k, want := range s.check {
			got, ok := get(k)
			if ok != (want != "") || got != want {
				t.Errorf("%s: Get(%s) = %q, %v; want %q", s.name, k, got, ok, want)
			}
		}
	}

	// Opening again finds the existing topic and its values.
	st2, err := OpenState(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if v, ok, err := st2.Get(ctx, "b"); err != nil || !ok || string(v) != "x" {
		t.Errorf("second client: Get(b) = %q, %v, %v; want x", v, ok, err)
	}
}
