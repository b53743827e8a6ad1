package producer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationEraRules walks the epoch through each event that must
// advance it, and the ones that must not, against the real broker.
func TestIntegrationEraRules(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers, cfg.DialTimeout = []string{brokers(t)}, 10*time.Second
	var id [4]byte
	_, _ = rand.Read(id[:])
	cfg.Topic = "it.era." + hex.EncodeToString(id[:])
	ctx := t.Context()
	st, err := OpenState(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	a := schema.Server{Identity: "mariadb server_id=1", File: "mysql-bin.000007", Pos: 900}
	step := func(name string, sight Sighting, want uint16) Era {
		t.Helper()
		era, err := st.ResolveEra(ctx, sight)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if era.Epoch != want {
			t.Fatalf("%s: epoch %d (%s), want %d", name, era.Epoch, era.Reason, want)
		}
		return era
	}
	// A tail position from before epochs existed (no epoch, no server) is a
	// mark of epoch 0.
	if err := st.Put(ctx, "tail/legacy", []byte(`{"file":"mysql-bin.000009","pos":120}`)); err != nil {
		t.Fatal(err)
	}
	step("first sighting, behind a legacy tail's position", Sighting{Server: a}, 1)

	a.File, a.Pos = "mysql-bin.000009", 500
	step("the binlog moved on", Sighting{Server: a}, 1)
	if era := step("again", Sighting{Server: a}, 1); era.File != a.File || era.Pos != a.Pos {
		t.Errorf("the era's mark is %s:%d, want the sighted %s:%d", era.File, era.Pos, a.File, a.Pos)
	}
	// A tail of this epoch committed further on: its position is a mark too.
	if err := st.Put(ctx, "tail/t1", []byte(`{"file":"mysql-bin.000012","pos":4000,"epoch":1,"server":"mariadb server_id=1"}`)); err != nil {
		t.Fatal(err)
	}
	a.File, a.Pos = "mysql-bin.000011", 10
	step("the binlog ends before a tail's committed position (a reset)", Sighting{Server: a}, 2)
	a.File, a.Pos = "mysql-bin.000011", 20
	step("the tail's old-epoch position is no mark of the new epoch", Sighting{Server: a}, 2)
	step("a tail reset", Sighting{Server: a, Reset: "the tail was reset (--reset)"}, 3)

	b := schema.Server{Identity: "mariadb server_id=2", File: "mysql-bin.000001", Pos: 4, ReadOnly: true}
	if _, err := st.ResolveEra(ctx, Sighting{Server: b}); !errors.Is(err, ErrStaleSource) {
		t.Fatalf("a backfill on a read-only other server: %v, want ErrStaleSource", err)
	}
	step("a tail following the other server (a replica, or a failover)", Sighting{Server: b, Follower: true}, 4)
	b.ReadOnly = false
	b.Pos = 5000
	step("the backfill on that server", Sighting{Server: b}, 4)
	step("the first server again (a failback)", Sighting{Server: a}, 5)
}
