package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestIntegrationRedriveSkipsReference: a record too large for the
// dead-letter topic is dead-lettered as a reference and the member goes on;
// `dlq inspect` shows the reference; `dlq redrive` sends back the whole dead
// letters, refuses the reference by name (it has no value to send), counts
// it and exits 4; a second re-drive has nothing left; the re-driven record
// lands.
func TestIntegrationRedriveSkipsReference(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.adm.CreateTopic(ctx, 1, -1, nil, e.topic); err != nil {
		t.Fatal(err)
	}
	limit := "65536"
	if _, err := e.adm.CreateTopic(ctx, 1, -1, map[string]*string{"max.message.bytes": &limit}, e.topic+".dlq"); err != nil {
		t.Fatal(err)
	}
	longDevice := strings.Repeat("d", 300)
	longValue := e.iotRecord(1, longDevice, e.startT.Add(time.Hour)).Value
	goodValue := e.iotRecord(2, "ok", e.startT.Add(2*time.Hour)).Value
	poison := make([]byte, 100_000) // random bytes: no change event, and incompressible
	_, _ = rand.Read(poison)
	sum := sha256.Sum256(poison)
	for _, r := range []*kgo.Record{
		{Topic: e.topic, Key: []byte("long"), Value: longValue},
		{Topic: e.topic, Key: []byte("poison"), Value: poison},
		{Topic: e.topic, Key: []byte("good"), Value: goodValue},
	} {
		if err := e.kcl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	consume := func() {
		t.Helper()
		proc, logs := e.startProc("consume", "--linger", "100ms")
		if err := e.caughtUp(time.Minute); err != nil {
			t.Fatalf("the group did not catch up: %v\n%s", err, logs)
		}
		_ = proc.Process.Signal(syscall.SIGTERM)
		if err := proc.Wait(); err != nil {
			t.Fatalf("consume: %v\n%s", err, logs)
		}
	}
	consume()
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE device_type = 'ok'"); n != 1 {
		t.Errorf("the good record is not in the target (%d rows)", n)
	}

	out := e.must("dlq", "inspect", "-n", "10", "--idle", "1s")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 {
		t.Fatalf("dlq inspect printed %d records, want 2:\n%s", len(lines), out)
	}
	for _, want := range []string{`"sluice.dlq.reference":"the dead letter`, `"sluice.dlq.value.size":"100000"`,
		`"sluice.dlq.value.sha256":"` + hex.EncodeToString(sum[:]) + `"`, `"sluice.dlq.offset":"1"`, "MESSAGE_TOO_LARGE"} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq inspect does not show %s:\n%.2000s", want, out)
		}
	}

	if _, err := e.admin.Exec("ALTER TABLE " + e.dst + ".records MODIFY device_type VARCHAR(400) NOT NULL"); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := e.sluice("dlq", "redrive")
	if code != exitPartial {
		t.Errorf("dlq redrive over a reference: exit %d, want %d\n%s%s", code, exitPartial, out, errOut)
	}
	if !strings.Contains(out, "1 records from "+e.topic+".dlq") || !strings.Contains(out, "1 skipped: 1 references") {
		t.Errorf("dlq redrive does not count the re-driven and the skipped record:\n%s", out)
	}
	// The dead letters' order in the DLQ is the writer's (a decode failure
	// is dead-lettered before the batch is written): the reference names
	// its record's own coordinates, whichever offset it has.
	if !regexp.MustCompile(regexp.QuoteMeta(e.topic+".dlq/0@") + `\d+` + regexp.QuoteMeta(" is a reference, not re-driven: record "+e.topic+"/0@1 key \"poison\"")).MatchString(errOut) {
		t.Errorf("dlq redrive stderr does not name the reference and its record %s/0@1:\n%s", e.topic, errOut)
	}
	for _, want := range []string{"sha256 " + hex.EncodeToString(sum[:]), "1 reference dead letters of " + e.topic + ".dlq could not be re-driven"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("dlq redrive stderr does not say %q:\n%s", want, errOut)
		}
	}
	if out, errOut, code := e.sluice("dlq", "redrive"); code != 0 || !strings.Contains(out, "0 records") {
		t.Errorf("second dlq redrive: exit %d, want 0 with nothing left\n%s%s", code, out, errOut)
	}

	consume()
	if n := e.count("SELECT COUNT(*) FROM "+e.dst+".records WHERE device_type = ?", longDevice); n != 1 {
		t.Errorf("the re-driven record is not in the target (%d rows)", n)
	}
}
