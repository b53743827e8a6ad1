package main

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
)

// announceGroup says, before this process's members join, which members the
// group already holds (consumer.AnnounceGroup), within --kafka-timeout.
func (s *stage) announceGroup(ctx context.Context, ours []string) {
	ctx, cancel := context.WithTimeout(ctx, s.o.kafkaTimeout)
	defer cancel()
	cl, err := kgo.NewClient(s.o.kafkaClient()...)
	if err != nil {
		return
	}
	defer cl.Close()
	consumer.AnnounceGroup(ctx, kadm.NewClient(cl), s.o.group, ours, s.log)
}
