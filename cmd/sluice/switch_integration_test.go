package main

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIntegrationSwitchToConfig is the README's "Migrating from the
// flag-only setup": a deployment that ran the IoT table from flags (the
// nightly run, then tail and consume) stops, and starts again from the
// shipped example configuration with the same topic, group and tail name.
// The configured tail resumes where the flag-only one stopped (changes
// made in between arrive), the configured consumer resumes at the group's
// committed offsets (no row written before the switch is written again)
// and the target ends equal to the source.
func TestIntegrationSwitchToConfig(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	e.must(append([]string{"seed", "--rows", "300"}, e.window()...)...)
	e.must(append([]string{"run"}, e.window()...)...)
	rng := rand.New(rand.NewPCG(20, 21))
	var ch changes

	// The flag-only deployment follows the source for a while.
	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	cons, clogs := e.startProc("consume", "--linger", "50ms")
	for round := range 3 {
		e.mutate(rng, round, &ch)
	}
	e.waitSame(time.Minute, tlogs, clogs)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)

	// Changes while nothing runs: only a tail that resumes at the flag-only
	// tail's position carries them.
	for round := 3; round < 5; round++ {
		e.mutate(rng, round, &ch)
	}
	topicBefore := e.topicRecords(context.Background())

	// The same deployment, from the example configuration: the IoT table's
	// topic is the one the flags used; group and tail name come from the
	// same environment.
	text := strings.NewReplacer("source_db.", e.src+".", "target_db.", e.dst+".",
		"topic: sluice.raw_records", "topic: "+e.topic).Replace(readExample(t))
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("migrate", "--config", path)
	out := e.must("check", "--config", path)
	if !strings.Contains(out, "topic:  "+e.topic+"\n") {
		t.Fatalf("check --config does not plan the flag-only topic %s:\n%s", e.topic, out)
	}
	tl, tlogs = e.startTail("--config", path, "--flush-interval", "20ms")
	if !strings.Contains(tlogs.String(), "tail: resuming") {
		t.Errorf("tail --config did not resume at the flag-only tail's position:\n%s", tlogs)
	}
	cons, clogs = e.startProc("consume", "--config", path, "--linger", "50ms")
	for round := 5; round < 7; round++ {
		e.mutate(rng, round, &ch)
	}
	e.waitSame(time.Minute, tlogs, clogs)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)

	// Resuming at the group's committed offsets: the configured members
	// applied only records produced after the flag-only consumer stopped.
	m := regexp.MustCompile(`msg="consumer summary".* records=(\d+)`).FindStringSubmatch(clogs.String())
	if m == nil {
		t.Fatalf("consume --config logged no summary:\n%s", clogs)
	}
	applied, _ := strconv.ParseInt(m[1], 10, 64)
	after := e.topicRecords(context.Background())
	if applied == 0 || applied > after-topicBefore {
		t.Errorf("consume --config applied %d records; the topic gained %d since the flag-only consumer stopped (it held %d then): it must resume at the group's offsets", applied, after-topicBefore, topicBefore)
	}
	if _, _, code := e.sluice(append([]string{"verify", "--config", path}, e.window()...)...); code != 0 {
		t.Errorf("verify --config exits %d after the switch", code)
	}

	// The file's kafka.brokers is used when no flag or variable gives the
	// brokers, and --brokers / SLUICE_BROKERS win over it.
	withBrokers := func(brokers string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "brokers.yaml")
		if err := os.WriteFile(p, []byte(strings.Replace(text, "kafka:\n", "kafka:\n  brokers: ["+brokers+"]\n", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, errOut, code := e.sluice(append([]string{"run", "--config", withBrokers("127.0.0.1:1")}, e.window()...)...); code != 0 {
		t.Errorf("SLUICE_BROKERS did not override the file's kafka.brokers: exit %d\n%s", code, errOut)
	}
	var env []string
	for _, kv := range append(e.env(), e.extraEnv...) {
		if !strings.HasPrefix(kv, "SLUICE_BROKERS=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(sluiceBin, append([]string{"run", "--config", withBrokers(e.brokers)}, e.window()...)...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("run --config with the brokers only in the file: %v\n%s", err, out)
	}
}
