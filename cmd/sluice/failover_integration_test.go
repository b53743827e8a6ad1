package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ownMariaDB is a MariaDB server of one test's own (deploy/local/stack.sh
// in a directory of its own, on a free port), for a test that resets the
// source's binlog or restarts the server: the shared test server's binlog is
// followed by other packages' tests running at the same time.
type ownMariaDB struct {
	t    *testing.T
	dir  string
	port int
	base string // DSN up to the database name
}

const stackScript = "../../deploy/local/stack.sh"

func startOwnMariaDB(t *testing.T) *ownMariaDB {
	t.Helper()
	dir, err := os.MkdirTemp("", "sl-own-") // short: the server's socket lives in it
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := &ownMariaDB{t: t, dir: dir, port: port, base: fmt.Sprintf("sluice:sluice@tcp(127.0.0.1:%d)/", port)}
	t.Cleanup(func() {
		if out, err := m.stack("destroy"); err != nil {
			t.Errorf("stack.sh destroy: %v\n%s", err, out)
		}
	})
	if out, err := m.stack("up-mysql"); err != nil {
		t.Fatalf("stack.sh up-mysql: %v\n%s", err, out)
	}
	return m
}

func (m *ownMariaDB) stack(cmd string, env ...string) ([]byte, error) {
	c := exec.Command("bash", stackScript, cmd)
	c.Env = append(os.Environ(), append([]string{"SLUICE_STACK_DIR=" + m.dir, fmt.Sprintf("SLUICE_MYSQL_PORT=%d", m.port)}, env...)...)
	return c.CombinedOutput()
}

// restart stops the server and starts it again with another server_id, as
// a failover to another server, or a rebuilt one, looks to a client.
func (m *ownMariaDB) restart(serverID int) {
	m.t.Helper()
	if out, err := m.stack("restart-mysql", fmt.Sprintf("SLUICE_MYSQL_SERVER_ID=%d", serverID)); err != nil {
		m.t.Fatalf("stack.sh restart-mysql: %v\n%s", err, out)
	}
}

// The sequence: the source's binlog numbering starts again (RESET
// MASTER, as on a rebuilt server or a promoted replica), under a running
// tail, under a stopped one, and before the README's `--reset --from now`;
// a backfill re-run after a reset; and the server restarted with another
// server_id. After each, every change reaches the target: versions keep
// growing across each restart of the numbering. Before epochs, the first
// reset left the target at the old values, silently.
func TestIntegrationFailoverVersionsKeepGrowing(t *testing.T) {
	_, brokers := requireServers(t)
	my := startOwnMariaDB(t)
	e := newITEnvOn(t, my.base, brokers, "")
	e.migrateOnly()
	e.must(append([]string{"seed", "--rows", "300"}, e.window()...)...)
	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	// The consumer rides out the server's restart below (its own retries,
	// about 50 s of backoff, instead of its supervisor's restart).
	cons, clogs := e.startProc("consume", "--linger", "50ms", "--db-attempts", "10")
	e.must(append([]string{"backfill"}, e.window()...)...)
	rng := rand.New(rand.NewPCG(21, 22))
	var ch changes
	round := 0
	changeAndWait := func(what string) {
		t.Helper()
		e.mutate(rng, round, &ch)
		round++
		t.Logf("%s: waiting for the target", what)
		e.waitTablesEqual(time.Minute, tlogs, clogs)
	}
	var tailLogs []string
	stopTail := func() {
		t.Helper()
		stopProc(t, tl, tlogs)
		tailLogs = append(tailLogs, tlogs.String())
	}
	resetMaster := func() {
		t.Helper()
		if _, err := e.admin.Exec("RESET MASTER"); err != nil {
			t.Fatal(err)
		}
	}
	// pastOld resets the binlog, then changes the source until the new
	// binlog is past the old one's offset and GTID sequence number, as
	// a busy server soon is: a position alone then looks valid.
	pastOld := func() {
		t.Helper()
		_, pos0, gtid0 := e.binlogNow()
		resetMaster()
		for i := 0; ; i++ {
			e.mutate(rng, round, &ch)
			round++
			if _, pos, gtid := e.binlogNow(); pos > pos0 && gtidSeq(t, gtid) > gtidSeq(t, gtid0) {
				t.Logf("the new binlog passed the old one (%d > %d, %s > %s) after %d rounds", pos, pos0, gtid, gtid0, i+1)
				return
			}
		}
	}
	changeAndWait("before any reset")

	resetMaster()
	changeAndWait("after a binlog reset under the running tail")

	pastOld()
	changeAndWait("after a reset under the running tail, the new binlog past the old position")

	stopTail()
	pastOld() // while no tail runs: the new binlog keeps it
	tl, tlogs = e.startTail("--flush-interval", "20ms")
	e.waitTablesEqual(time.Minute, tlogs, clogs)

	stopTail()
	resetMaster()
	tl, tlogs = e.startTail("--reset", "--from", "now", "--flush-interval", "20ms")
	changeAndWait("after a reset and the README's --reset --from now")

	// No tail: a re-run of the window is the repair, and its reads, taken
	// after a reset, must win over the versions from before it.
	stopTail()
	resetMaster()
	e.srcExec("UPDATE {src}.raw_records SET message = CONCAT('repaired ', id) WHERE timestamp < ?", e.startT.Add(12*time.Hour))
	e.must(append([]string{"backfill"}, e.window()...)...)
	e.waitEqual(time.Minute, e.sourceEqualsTarget, clogs)

	tl, tlogs = e.startTail("--flush-interval", "20ms")
	my.restart(2)
	changeAndWait("after a restart with a new server_id")
	stopTail()
	stopProc(t, cons, clogs)

	logs := strings.Join(tailLogs, "")
	for _, why := range []string{"the source's binlog ends at", "the tail was reset (--reset)", "the source is another server: mariadb server_id=2, was mariadb server_id=1"} {
		if !strings.Contains(logs, `msg="tail: version epoch"`) || !strings.Contains(logs, why) {
			t.Errorf("no epoch began for %q; the tails' logs:\n%s", why, logs)
		}
	}
	var epoch int
	if err := e.admin.QueryRow("SELECT MAX(source_version >> 52) FROM " + e.dst + ".records").Scan(&epoch); err != nil {
		t.Fatal(err)
	}
	if epoch < 6 {
		t.Errorf("the newest version in the target is of epoch %d, want at least 6 (five resets and a new server)", epoch)
	}
}

// gtidSeq is the sequence number of a one-domain MariaDB GTID position
// ("0-1-42" → 42; "" → 0).
func gtidSeq(t *testing.T, gtid string) int {
	t.Helper()
	if gtid == "" {
		return 0
	}
	n, err := strconv.Atoi(gtid[strings.LastIndexByte(gtid, '-')+1:])
	if err != nil || strings.Contains(gtid, ",") {
		t.Fatalf("GTID position %q: want one domain", gtid)
	}
	return n
}
