package consumer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// greeting builds a HandshakeV10 payload with the given capabilities.
func greeting(caps, ext uint32) []byte {
	p := []byte{10}
	p = append(p, "10.11.19-MariaDB-log"...)
	p = append(p, 0)
	p = binary.LittleEndian.AppendUint32(p, 42) // connection id
	p = append(p, "scramble"...)                // auth data, part 1
	p = append(p, 0)                            // filler
	p = binary.LittleEndian.AppendUint16(p, uint16(caps))
	p = append(p, 45)                          // collation
	p = binary.LittleEndian.AppendUint16(p, 2) // status
	p = binary.LittleEndian.AppendUint16(p, uint16(caps>>16))
	p = append(p, 21)                            // auth data length
	p = append(p, 0, 0, 0, 0, 0, 0)              // filler
	p = binary.LittleEndian.AppendUint32(p, ext) // MariaDB's extended capabilities
	p = append(p, "scramble-two"...)
	return append(p, 0)
}

func TestParseGreeting(t *testing.T) {
	const mariadb = capProtocol41 | capDeprecateEOF
	for _, tc := range []struct {
		name string
		p    []byte
		why  string
	}{
		{"MariaDB with bulk operations", greeting(mariadb, extBulkOperation|1<<4), ""},
		{"MariaDB without", greeting(mariadb, 0), "does not offer bulk operations"},
		{"MySQL", greeting(mariadb|capClientMySQL, extBulkOperation), "not MariaDB"},
		{"protocol 9", append([]byte{9}, greeting(mariadb, extBulkOperation)[1:]...), "not protocol 10"},
		{"truncated", greeting(mariadb, extBulkOperation)[:30], "no extended capabilities"},
		{"no version end", []byte{10, 'a', 'b'}, "truncated"},
	} {
		caps, _, why := parseGreeting(tc.p)
		if (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("%s: why %q, want %q", tc.name, why, tc.why)
		}
		if tc.why == "" && caps != mariadb {
			t.Errorf("%s: capabilities %#x, want %#x", tc.name, caps, mariadb)
		}
	}
}

// handshakeAnswer builds the driver's answer: capabilities, max packet,
// collation, 19 bytes of filler, extended capabilities, then the user.
func handshakeAnswer(caps uint32) []byte {
	p := binary.LittleEndian.AppendUint32(make([]byte, 4), caps)
	p = append(p, make([]byte, 4+1+19)...)
	p = binary.LittleEndian.AppendUint32(p, 1<<4) // the driver's own: cache metadata
	p = append(p, "sluice\x00"...)
	putHeader(p, len(p)-4, 1)
	return p
}

// TestWireAnswer: bulk operations are added to the driver's handshake answer
// only where the server offers them and the connection stays plain, and
// nothing else of the answer changes.
func TestWireAnswer(t *testing.T) {
	const mariadb = capProtocol41 | capDeprecateEOF
	for _, tc := range []struct {
		name      string
		greet     []byte
		caps      uint32
		bulk      bool
		why       string
		wantNoEOF bool
	}{
		{"plain", greeting(mariadb, extBulkOperation), mariadb, true, "", true},
		{"plain, EOF packets kept", greeting(capProtocol41, extBulkOperation), mariadb, true, "", false},
		{"TLS", greeting(mariadb, extBulkOperation), mariadb | capSSL, false, "TLS", false},
		{"compression", greeting(mariadb, extBulkOperation), mariadb | capCompress, false, "compression", false},
		{"MySQL-style answer", greeting(mariadb, extBulkOperation), mariadb | capClientMySQL, false, "MariaDB client", false},
		{"server without bulk", greeting(mariadb, 0), mariadb, false, "does not offer", false},
	} {
		c := &wireConn{wire: NewWire()}
		c.serverCaps, c.serverExt, c.why = parseGreeting(tc.greet)
		c.greeted = true
		in := handshakeAnswer(tc.caps)
		orig := bytes.Clone(in)
		out := c.answer(in)
		if !bytes.Equal(in, orig) {
			t.Errorf("%s: the driver's buffer was changed", tc.name)
		}
		if c.bulk != tc.bulk || !strings.Contains(c.why, tc.why) || (tc.why == "") != (c.why == "") {
			t.Errorf("%s: bulk %v (%q), want %v (%q)", tc.name, c.bulk, c.why, tc.bulk, tc.why)
		}
		if !tc.bulk {
			if out != nil {
				t.Errorf("%s: the answer was changed", tc.name)
			}
			continue
		}
		want := bytes.Clone(orig)
		want[4+28] |= extBulkOperation
		if !bytes.Equal(out, want) {
			t.Errorf("%s: answer\n%x, want\n%x", tc.name, out, want)
		}
		if c.noEOF != tc.wantNoEOF {
			t.Errorf("%s: noEOF %v, want %v", tc.name, c.noEOF, tc.wantNoEOF)
		}
	}
}

// pipeConn is a wireConn over one end of a pipe, the server at the other.
func pipeConn(t *testing.T) (*wireConn, net.Conn) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	return &wireConn{Conn: client, wire: NewWire(), bulk: true, noEOF: true}, server
}

// readPackets reads n packets from r: their sequence numbers and payloads.
func readPackets(r io.Reader, n int) ([]byte, [][]byte, error) {
	var seqs []byte
	var payloads [][]byte
	for range n {
		var h [4]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, nil, err
		}
		p := make([]byte, uint24(h[:]))
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, nil, err
		}
		seqs, payloads = append(seqs, h[3]), append(payloads, p)
	}
	return seqs, payloads, nil
}

// TestWireCommandSplits: a command of 16 MiB - 1 bytes or more goes as
// several packets, the last shorter than that (empty when the command is an
// exact multiple), numbered from 0.
func TestWireCommandSplits(t *testing.T) {
	for _, size := range []int{10, 0xffffff - 1, 0xffffff, 0xffffff + 7} {
		c, server := pipeConn(t)
		p := make([]byte, 4+size)
		for i := range size {
			p[4+i] = byte(i * 7)
		}
		want := bytes.Clone(p[4:])
		done := make(chan error, 1)
		go func() { done <- c.command(p) }()
		parts := size/0xffffff + 1
		seqs, payloads, err := readPackets(server, parts)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := bytes.Join(payloads, nil); !bytes.Equal(got, want) {
			t.Errorf("size %d: the payload came through changed (%d bytes)", size, len(got))
		}
		for i, s := range seqs {
			if int(s) != i {
				t.Errorf("size %d: packet %d has sequence %d", size, i, s)
			}
		}
		if last := payloads[len(payloads)-1]; len(last) >= 0xffffff {
			t.Errorf("size %d: the last packet has %d bytes", size, len(last))
		}
	}
}

// serve answers each command read from server with the next of answers.
func serve(t *testing.T, server net.Conn, answers ...[]byte) chan [][]byte {
	t.Helper()
	got := make(chan [][]byte, 1)
	go func() {
		var cmds [][]byte
		for _, a := range answers {
			_, p, err := readPackets(server, 1)
			if err != nil {
				got <- cmds
				return
			}
			cmds = append(cmds, p[0])
			for len(a) > 0 { // one or more packets, already framed
				n := 4 + int(uint24(a))
				if _, err := server.Write(a[:n]); err != nil {
					got <- cmds
					return
				}
				a = a[n:]
			}
		}
		got <- cmds
	}()
	return got
}

func framed(seq byte, payloads ...[]byte) []byte {
	var out []byte
	for _, p := range payloads {
		h := make([]byte, 4)
		putHeader(h, len(p), seq)
		out = append(append(out, h...), p...)
		seq++
	}
	return out
}

func TestWirePrepareAndExecute(t *testing.T) {
	c, server := pipeConn(t)
	prepOK := []byte{0, 7, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0} // statement 7, no columns, 2 parameters
	param := []byte("a parameter definition")
	execOK := []byte{0, 0xfc, 0x10, 0x27, 5, 2, 0, 3, 0} // 10,000 rows, insert id 5, 3 warnings
	dup := append([]byte{0xff, 0x26, 0x04, '#'}, "23000Duplicate entry 'x' for key 'uniq_dedupe'"...)
	got := serve(t, server, framed(1, prepOK, param, param), framed(1, execOK), framed(1, dup))

	id, err := c.prepare("INSERT INTO t VALUES (?, ?)")
	if err != nil || id != 7 {
		t.Fatalf("prepare: %d, %v", id, err)
	}
	if again, err := c.prepare("INSERT INTO t VALUES (?, ?)"); err != nil || again != 7 {
		t.Errorf("a second prepare of the same text: %d, %v, want the first id without a round trip", again, err)
	}
	affected, warnings, err := c.bulkExecute([]byte{0, 0, 0, 0, 0xfa, 7, 0, 0, 0})
	if err != nil || affected != 10000 || warnings != 3 {
		t.Errorf("execute: %d rows, %d warnings, %v", affected, warnings, err)
	}
	_, _, err = c.bulkExecute([]byte{0, 0, 0, 0, 0xfa, 7, 0, 0, 0})
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1062 || string(me.SQLState[:]) != "23000" || !strings.Contains(me.Message, "uniq_dedupe") {
		t.Errorf("a duplicate key: %v, want the server's error 1062", err)
	}
	cmds := <-got
	if len(cmds) != 3 || cmds[0][0] != 0x16 || string(cmds[0][1:]) != "INSERT INTO t VALUES (?, ?)" || cmds[1][0] != 0xfa {
		t.Errorf("commands sent: %q", cmds)
	}
}

// TestWirePrepareWithEOF: without CLIENT_DEPRECATE_EOF the definitions end
// with EOF packets, which the prepare reads too, leaving nothing behind.
func TestWirePrepareWithEOF(t *testing.T) {
	c, server := pipeConn(t)
	c.noEOF = false
	prepOK := []byte{0, 9, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0} // statement 9, one column, one parameter
	eof := []byte{0xfe, 0, 0, 2, 0}
	execOK := []byte{0, 1, 0, 2, 0, 0, 0}
	got := serve(t, server, framed(1, prepOK, []byte("param"), eof, []byte("column"), eof), framed(1, execOK))
	if id, err := c.prepare("SELECT ?"); err != nil || id != 9 {
		t.Fatalf("prepare: %d, %v", id, err)
	}
	if n, _, err := c.bulkExecute([]byte{0, 0, 0, 0, 0xfa}); err != nil || n != 1 {
		t.Errorf("the execute after it read %d, %v: the prepare left packets behind", n, err)
	}
	<-got
}

// TestWireExchangeFailures: an exchange that breaks (the server hangs up, or
// the context ends) closes the socket and says so as a bad connection (a
// transient error); the server's own error leaves the socket usable.
func TestWireExchangeFailures(t *testing.T) {
	c, server := pipeConn(t)
	got := serve(t, server, framed(1, []byte{0xff, 0xbd, 0x04, '#', 'H', 'Y', '0', '0', '0', 'n', 'o'}))
	err := c.exchange(context.Background(), func() error { _, _, err := c.bulkExecute(make([]byte, 9)); return err })
	var me *mysql.MySQLError
	if !errors.As(err, &me) || c.broken {
		t.Errorf("the server's error: %v, broken %v", err, c.broken)
	}
	<-got
	server.Close()
	err = c.exchange(context.Background(), func() error { _, _, err := c.bulkExecute(make([]byte, 9)); return err })
	if !c.broken || !errors.Is(err, mysql.ErrInvalidConn) || !transientMySQL(err) {
		t.Errorf("a hung-up server: %v, broken %v", err, c.broken)
	}
	if err := c.exchange(context.Background(), func() error { return nil }); !errors.Is(err, mysql.ErrInvalidConn) {
		t.Errorf("an exchange on a broken socket: %v", err)
	}

	c, server = pipeConn(t) // a server that never answers
	go func() { _, _ = io.Copy(io.Discard, server) }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = c.exchange(ctx, func() error { _, _, err := c.bulkExecute(make([]byte, 9)); return err })
	if !c.broken || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, mysql.ErrInvalidConn) {
		t.Errorf("an exchange past its deadline: %v, broken %v", err, c.broken)
	}
}

// TestAppendLenenc: a string's length is a length-encoded integer, one
// byte below 251 and a marker and 2 or 3 bytes above.
func TestAppendLenenc(t *testing.T) {
	for n, prefix := range map[int][]byte{250: {250}, 251: {0xfc, 251, 0}, 65535: {0xfc, 0xff, 0xff}, 65536: {0xfd, 0, 0, 1}} {
		if got := appendLenenc(nil, strings.Repeat("m", n)); !bytes.Equal(got[:len(prefix)], prefix) || len(got) != n+len(prefix) {
			t.Errorf("a %d-byte string: prefix %x", n, got[:len(prefix)])
		}
	}
}

// TestBulkPackets: rows are split into commands that each fit the server's
// packet size, every command with its own header, and a row bigger than
// that alone sends the batch to the upsert.
func TestBulkPackets(t *testing.T) {
	types := []byte{0xfe, 0, 0x08, 0x80}
	head := bulkHeader(types)
	row := func(i int) []byte {
		r := appendLenenc([]byte{indicatorNone}, strings.Repeat(string(rune('a'+i)), 100))
		return binary.LittleEndian.AppendUint64(append(r, indicatorNone), uint64(i))
	}
	size := len(row(0))
	encode := func(max int) (*bulkCmds, bool) {
		var cmds bulkCmds
		cmds.reset(head, max)
		for i := range 10 {
			mark := len(cmds.buf)
			cmds.buf = append(cmds.buf, row(i)...)
			if !cmds.endRow(mark) {
				return &cmds, false
			}
		}
		return &cmds, true
	}
	max := len(head) - 4 + 3*size // three rows a command
	cmds, ok := encode(max)
	if !ok || len(cmds.starts) != 4 {
		t.Fatalf("%d commands for 10 rows of 3 a command", len(cmds.starts))
	}
	for n := range cmds.starts {
		p := cmds.command(n)
		rows := (len(p) - len(head)) / size
		var want []byte
		for i := 3 * n; i < 3*n+rows; i++ {
			want = append(want, row(i)...)
		}
		if !bytes.Equal(p[len(head):], want) {
			t.Errorf("command %d: its rows are not rows %d to %d as encoded", n, 3*n, 3*n+rows-1)
		}
		if len(p)-4 > max || p[4] != 0xfa || p[9] != bulkSendTypes || !bytes.Equal(p[11:len(head)], types) || rows != min(3, 10-3*n) {
			t.Errorf("command %d: %d bytes, %d rows, header %x", n, len(p), rows, p[:len(head)])
		}
	}
	if _, ok := encode(len(head) - 4 + size - 1); ok {
		t.Error("a row bigger than a packet: want false")
	}
}
