package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReference: a reference keeps Sluice's headers and the record's own
// (within a bound), names the value by size and hash, keeps its first bytes,
// and is bounded whatever the dead letter carried.
func TestReference(t *testing.T) {
	src := &kgo.Record{Topic: "t", Partition: 2, Offset: 7, Key: []byte(strings.Repeat("k", 2000)),
		Value: []byte(strings.Repeat("v", 5000)),
		Headers: []kgo.RecordHeader{
			{Key: "small", Value: []byte("kept")},
			{Key: "huge", Value: []byte(strings.Repeat("h", 20<<10))},
			{Key: "after", Value: []byte("kept too")},
		}}
	cause := &RecordError{Topic: "t", Partition: 2, Offset: 7, Key: src.Key, Err: fmt.Errorf("%s: %w", strings.Repeat("é", 5000), errors.New("bad"))}
	dl := deadLetter("t.dlq", "g", src, ReasonDecode, cause, time.Unix(0, 0))
	ref := reference(dl, fmt.Errorf("%w (uncompressed_bytes=30000)", kerr.MessageTooLarge))

	sum := sha256.Sum256(src.Value)
	want := map[string]string{
		HeaderValueSize:      "5000",
		HeaderValueHash:      hex.EncodeToString(sum[:]),
		HeaderKeySize:        "2000",
		HeaderHeadersDropped: "1",
		HeaderTopic:          "t",
		HeaderPartition:      "2",
		HeaderOffset:         "7",
		HeaderReason:         ReasonDecode,
		"small":              "kept",
		"after":              "kept too",
	}
	for k, v := range want {
		if got, ok := Header(ref, k); !ok || got != v {
			t.Errorf("header %s = %.80q (present %v), want %.80q", k, got, ok, v)
		}
	}
	if _, ok := Header(ref, "huge"); ok {
		t.Errorf("the 20 KiB header was kept")
	}
	if string(ref.Value) != strings.Repeat("v", ReferenceHeadBytes) || string(ref.Key) != strings.Repeat("k", ReferenceHeadBytes) {
		t.Errorf("reference value %d bytes, key %d bytes; want the first %d of each", len(ref.Value), len(ref.Key), ReferenceHeadBytes)
	}
	msg, _ := Header(ref, HeaderError)
	if len(msg) > referenceErrorBytes || !utf8.ValidString(msg) || !strings.HasPrefix(msg, "record t/2@7") {
		t.Errorf("reference error is %d bytes (valid UTF-8 %v), want at most %d, cut between characters, starting with the record", len(msg), utf8.ValidString(msg), referenceErrorBytes)
	}
	why, _ := Header(ref, HeaderReference)
	if !IsReference(ref) || !strings.Contains(why, "MESSAGE_TOO_LARGE") || !strings.Contains(why, "t.dlq") {
		t.Errorf("reference header %q, want it to say why and where", why)
	}
	if IsReference(dl) {
		t.Errorf("a whole dead letter counts as a reference")
	}
	if n := recordBytes(ref); n > 24<<10 {
		t.Errorf("reference is %d bytes, want at most 24 KiB", n)
	}
}

func TestCutUTF8(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"ascii", "abcdef", 4, "abcd"},
		{"inside a two-byte character", "aéé", 2, "a"},
		{"after a character", "aéé", 3, "aé"},
		{"inside a three-byte character", "Ɐ", 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(cutUTF8([]byte(tc.in), tc.n)); got != tc.want {
				t.Errorf("cutUTF8(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

// TestTakeSkipsAcknowledgedDeadLetter: a record whose dead letter this
// member has had acknowledged, back after an offset commit that failed, is
// not dead-lettered again; once a commit covers it, it is forgotten.
func TestTakeSkipsAcknowledgedDeadLetter(t *testing.T) {
	c := &Consumer{cfg: DefaultConfig(), metrics: NewMetrics(nil), log: slog.New(slog.NewTextHandler(io.Discard, nil)), sent: sentSet{}}
	b := newBatch(10, time.Second)
	rec := func(off int64) *kgo.Record {
		return &kgo.Record{Topic: "t", Partition: 1, Offset: off, Key: []byte("k"), Value: []byte("not a change event")}
	}
	now := time.Now()
	for _, off := range []int64{4, 5} {
		if err := c.take(context.Background(), b, rec(off), now); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(b.dead))
	}
	c.sent.add(b.dead[0]) // @4 acknowledged; @5 failed
	b.reset()
	for _, off := range []int64{4, 5} {
		if err := c.take(context.Background(), b, rec(off), now); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.dead) != 1 || coordinates(b.dead[0]) != "t/1@5" {
		t.Fatalf("after redelivery: %d dead letters, want only t/1@5's", len(b.dead))
	}
	if b.records != 2 || b.offsets["t"][1].Offset != 6 {
		t.Errorf("the skipped record's offset is not committed with the batch: %d records, next offset %d", b.records, b.offsets["t"][1].Offset)
	}
	c.sent.add(b.dead[0])
	c.sent.committed(map[string]map[int32]kgo.EpochOffset{"t": {1: {Offset: 5}}})
	if c.sent.has(rec(4)) || !c.sent.has(rec(5)) {
		t.Errorf("after a commit at 5: @4 remembered %v (want false), @5 %v (want true)", c.sent.has(rec(4)), c.sent.has(rec(5)))
	}
	if got := strconv.Itoa(len(c.sent)); got != "1" {
		t.Errorf("%s entries left, want 1", got)
	}
}
