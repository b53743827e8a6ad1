package producer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// testDeadLetter is a dead letter of src as the consumer builds it: the
// record's key, value and headers, and Sluice's headers naming the source.
func testDeadLetter(dlqTopic string, src *kgo.Record, cause string) *kgo.Record {
	h := append([]kgo.RecordHeader{}, src.Headers...)
	for _, kv := range [][2]string{{schema.DLQHeaderReason, "decode"}, {schema.DLQHeaderError, cause},
		{schema.DLQHeaderTopic, src.Topic}, {schema.DLQHeaderPartition, strconv.Itoa(int(src.Partition))},
		{schema.DLQHeaderOffset, strconv.FormatInt(src.Offset, 10)}, {schema.DLQHeaderGroup, "g"}, {schema.DLQHeaderTime, "1970-01-01T00:00:00Z"}} {
		h = append(h, kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])})
	}
	return &kgo.Record{Topic: dlqTopic, Key: src.Key, Value: src.Value, Headers: h}
}

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
	dl := testDeadLetter("t.dlq", src, "record t/2@7: "+strings.Repeat("é", 5000)+": bad")
	ref := reference(dl, fmt.Errorf("%w (uncompressed_bytes=30000)", kerr.MessageTooLarge))

	sum := sha256.Sum256(src.Value)
	want := map[string]string{
		schema.DLQHeaderValueSize:      "5000",
		schema.DLQHeaderValueHash:      hex.EncodeToString(sum[:]),
		schema.DLQHeaderKeySize:        "2000",
		schema.DLQHeaderHeadersDropped: "1",
		schema.DLQHeaderTopic:          "t",
		schema.DLQHeaderPartition:      "2",
		schema.DLQHeaderOffset:         "7",
		schema.DLQHeaderReason:         "decode",
		"small":                        "kept",
		"after":                        "kept too",
	}
	for k, v := range want {
		if got, ok := header(ref, k); !ok || got != v {
			t.Errorf("header %s = %.80q (present %v), want %.80q", k, got, ok, v)
		}
	}
	if _, ok := header(ref, "huge"); ok {
		t.Errorf("the 20 KiB header was kept")
	}
	if string(ref.Value) != strings.Repeat("v", ReferenceHeadBytes) || string(ref.Key) != strings.Repeat("k", ReferenceHeadBytes) {
		t.Errorf("reference value %d bytes, key %d bytes; want the first %d of each", len(ref.Value), len(ref.Key), ReferenceHeadBytes)
	}
	msg, _ := header(ref, schema.DLQHeaderError)
	if len(msg) > referenceErrorBytes || !utf8.ValidString(msg) || !strings.HasPrefix(msg, "record t/2@7") {
		t.Errorf("reference error is %d bytes (valid UTF-8 %v), want at most %d, cut between characters, starting with the record", len(msg), utf8.ValidString(msg), referenceErrorBytes)
	}
	why, ok := header(ref, schema.DLQHeaderReference)
	if !ok || !strings.Contains(why, "MESSAGE_TOO_LARGE") || !strings.Contains(why, "t.dlq") {
		t.Errorf("reference header %q, want it to say why and where", why)
	}
	if _, ok := header(dl, schema.DLQHeaderReference); ok {
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

// TestIntegrationOversizedDeadLetterIsReference: a dead letter too large for
// the dead-letter topic, between small ones, does not fail the batch: it is
// written as a reference (size, SHA-256, first bytes), the others whole,
// each exactly once, and every one is acknowledged to the caller. A batch of
// the large one alone goes the same way.
func TestIntegrationOversizedDeadLetterIsReference(t *testing.T) {
	b := brokers(t)
	for _, tc := range []struct {
		name        string
		dlqMax      string // the dead-letter topic's, set before the writer starts; "": created by the writer
		lowerDLQMax string // set on the dead-letter topic after the writer started; "": not changed
		poisonBytes int
		alone       bool // the large dead letter is sent in a batch of its own
	}{
		{name: "over the dead-letter topic's max.message.bytes", dlqMax: "65536", poisonBytes: 100_000},
		{name: "the limit lowered after the writer started", lowerDLQMax: "65536", poisonBytes: 100_000},
		{name: "a 1.1 MB record, over the default limit", poisonBytes: 1_100_000},
		{name: "alone in its batch", dlqMax: "65536", poisonBytes: 100_000, alone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var id [4]byte
			_, _ = rand.Read(id[:])
			topic := "it.dlqref." + hex.EncodeToString(id[:])
			dlqTopic := topic + ".dlq"
			admCl, err := kgo.NewClient(kgo.SeedBrokers(b), kgo.ConsumeTopics(dlqTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(4<<20))
			if err != nil {
				t.Fatal(err)
			}
			defer admCl.Close()
			adm := kadm.NewClient(admCl)
			if tc.dlqMax != "" {
				if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"max.message.bytes": &tc.dlqMax}, dlqTopic); err != nil {
					t.Fatal(err)
				}
			}
			reg := prometheus.NewRegistry()
			m := NewDeadLetterMetrics(reg)
			w, err := NewDeadLetterWriter(ctx, DeadLetterConfig{Brokers: []string{b}, Topic: dlqTopic, ClientID: "it", DialTimeout: 10 * time.Second}, m, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if tc.lowerDLQMax != "" {
				if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &tc.lowerDLQMax}}, dlqTopic); err != nil {
					t.Fatal(err)
				}
			}
			poison := make([]byte, tc.poisonBytes) // random: no compression shrinks it under the limit
			_, _ = rand.Read(poison)
			const poisonAt = 3
			var dead []*kgo.Record
			for _, off := range []int64{1, poisonAt, 5} {
				v := []byte(fmt.Sprintf("small value %d", off))
				if off == poisonAt {
					v = poison
				}
				src := &kgo.Record{Topic: topic, Offset: off, Key: []byte(fmt.Sprintf("key-%d", off)), Value: v,
					Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}}
				dead = append(dead, testDeadLetter(dlqTopic, src, fmt.Sprintf("record %s/0@%d: bad", topic, off)))
			}
			acked := map[string]int{}
			batches := [][]*kgo.Record{dead}
			if tc.alone {
				batches = [][]*kgo.Record{{dead[0], dead[2]}, {dead[1]}}
			}
			for _, batch := range batches {
				if err := w.Send(ctx, batch, func(dl *kgo.Record) { acked[coordinates(dl)]++ }); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			for _, off := range []int{1, poisonAt, 5} {
				if c := fmt.Sprintf("%s/0@%d", topic, off); acked[c] != 1 {
					t.Errorf("dead letter %s acknowledged %d times, want 1 (all: %v)", c, acked[c], acked)
				}
			}
			if got := testutil.ToFloat64(m.references); got != 1 {
				t.Errorf("sluice_consumer_dlq_references_total = %v, want 1", got)
			}

			var dls []*kgo.Record
			for len(dls) < 3 && ctx.Err() == nil {
				dls = append(dls, admCl.PollFetches(ctx).Records()...)
			}
			if len(dls) != 3 {
				t.Fatalf("%d dead letters in %s, want 3", len(dls), dlqTopic)
			}
			seen := map[int64]int{}
			for _, dl := range dls {
				off, _ := header(dl, schema.DLQHeaderOffset)
				o, _ := strconv.ParseInt(off, 10, 64)
				seen[o]++
				if origin, _ := header(dl, "origin"); origin != "test" {
					t.Errorf("dead letter @%d lost the record's own header: %q", o, origin)
				}
				_, isRef := header(dl, schema.DLQHeaderReference)
				if o != poisonAt {
					if isRef || !bytes.Equal(dl.Value, []byte(fmt.Sprintf("small value %d", o))) {
						t.Errorf("dead letter @%d is not the record whole (reference %v, %d bytes)", o, isRef, len(dl.Value))
					}
					continue
				}
				sum := sha256.Sum256(poison)
				size, _ := header(dl, schema.DLQHeaderValueSize)
				hash, _ := header(dl, schema.DLQHeaderValueHash)
				why, _ := header(dl, schema.DLQHeaderReference)
				msg, _ := header(dl, schema.DLQHeaderError)
				switch {
				case !isRef:
					t.Errorf("the large dead letter is not a reference (%d bytes)", len(dl.Value))
				case size != strconv.Itoa(len(poison)) || hash != hex.EncodeToString(sum[:]):
					t.Errorf("reference says size %s sha256 %s, want %d %x", size, hash, len(poison), sum)
				case !bytes.Equal(dl.Value, poison[:ReferenceHeadBytes]):
					t.Errorf("reference value is %d bytes, want the record's first %d", len(dl.Value), ReferenceHeadBytes)
				case !strings.Contains(why, "MESSAGE_TOO_LARGE") || !strings.Contains(why, dlqTopic):
					t.Errorf("reference header %s = %q, want it to say MESSAGE_TOO_LARGE for %s", schema.DLQHeaderReference, why, dlqTopic)
				case !strings.Contains(msg, fmt.Sprintf("%s/0@%d", topic, poisonAt)):
					t.Errorf("reference error %q, want it naming %s/0@%d", msg, topic, poisonAt)
				case string(dl.Key) != fmt.Sprintf("key-%d", poisonAt):
					t.Errorf("reference key %q", dl.Key)
				}
			}
			for _, o := range []int64{1, poisonAt, 5} {
				if seen[o] != 1 {
					t.Errorf("record @%d has %d dead letters, want 1 (all: %v)", o, seen[o], seen)
				}
			}
		})
	}
}

// TestIntegrationDeadLetterFailureNamesRecord: a dead letter that cannot be
// written for any other reason than its size fails Send, naming the record
// it is for, and is not acknowledged.
func TestIntegrationDeadLetterFailureNamesRecord(t *testing.T) {
	b := brokers(t)
	var id [4]byte
	_, _ = rand.Read(id[:])
	dlqTopic := "it.dlqfail." + hex.EncodeToString(id[:]) + ".dlq"
	w, err := NewDeadLetterWriter(t.Context(), DeadLetterConfig{Brokers: []string{b}, Topic: dlqTopic, DialTimeout: 10 * time.Second}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the produce fails at once with the context's error
	dl := testDeadLetter(dlqTopic, &kgo.Record{Topic: "src", Partition: 2, Offset: 9, Value: []byte("x")}, "bad")
	acked := 0
	err = w.Send(ctx, []*kgo.Record{dl}, func(*kgo.Record) { acked++ })
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "dead-letter record src/2@9 to "+dlqTopic) {
		t.Errorf("Send = %v, want a context error naming src/2@9 and %s", err, dlqTopic)
	}
	if acked != 0 {
		t.Errorf("%d dead letters acknowledged, want 0", acked)
	}
}
