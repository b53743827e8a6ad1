package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The retry, resume and consumer DB flags reach the stage configs, and bad
// values are usage errors naming the flag.
func TestStageConfigsFromFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for none
	}{
		{name: "defaults"},
		{name: "all set", args: []string{"--chunk-attempts", "3", "--chunk-backoff", "1s", "--checkpoint-interval", "2s", "--restart",
			"--db-attempts", "7", "--db-backoff", "50ms", "--commit-timeout", "1m", "--bulk-load=false"}},
		{name: "zero chunk attempts", args: []string{"--chunk-attempts", "0"}, wantErr: "--chunk-attempts 0: must be at least 1"},
		{name: "negative chunk backoff", args: []string{"--chunk-backoff", "-1s"}, wantErr: "--chunk-backoff -1s"},
		{name: "zero checkpoint interval", args: []string{"--checkpoint-interval", "0s"}, wantErr: "--checkpoint-interval 0s"},
		{name: "zero db attempts", args: []string{"--db-attempts", "0"}, wantErr: "--db-attempts 0: must be at least 1"},
		{name: "negative db backoff", args: []string{"--db-backoff", "-5ms"}, wantErr: "--db-backoff -5ms"},
		{name: "zero commit timeout", args: []string{"--commit-timeout", "0s"}, wantErr: "--commit-timeout 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCommand()
			if err := c.parse(tt.args); err != nil {
				t.Fatal(err)
			}
			s := &stage{o: c.o, start: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), end: time.Date(2025, 10, 2, 0, 0, 0, 0, time.UTC)}
			bcfg, berr := s.backfillConfig("source_db")
			ccfg, cerr := s.consumerConfig()
			err := errors.Join(berr, cerr)
			if tt.wantErr != "" {
				var ue usageError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("configs: %v, want a usage error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bcfg.ChunkAttempts != c.o.chunkAttempts || bcfg.ChunkBackoff != c.o.chunkBackoff ||
				bcfg.CheckpointInterval != c.o.checkpointInterval || bcfg.Restart != c.o.restart || bcfg.CheckpointTimeout != c.o.kafkaTimeout {
				t.Errorf("backfill config %+v does not carry the flags %+v", bcfg, c.o)
			}
			if ccfg.DBAttempts != c.o.dbAttempts || ccfg.DBBackoff != c.o.dbBackoff || ccfg.CommitTimeout != c.o.commitTimeout ||
				ccfg.NoBulkLoad != (tt.name == "all set") {
				t.Errorf("consumer config %+v does not carry the flags %+v", ccfg, c.o)
			}
			if tt.name == "defaults" && (bcfg.ChunkAttempts != 5 || bcfg.ChunkBackoff != 200*time.Millisecond ||
				ccfg.DBAttempts != 5 || ccfg.DBBackoff != 100*time.Millisecond || ccfg.CommitTimeout != 30*time.Second || ccfg.NoBulkLoad) {
				t.Errorf("defaults: backfill %+v consumer %+v", bcfg, ccfg)
			}
		})
	}
}
