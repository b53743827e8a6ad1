package consumer

import (
	"errors"
	"strings"
	"testing"
)

// TestPlanReplayTopicsRefusesBadTargets: explicit offsets name one topic's
// partitions, so they are refused for several topics, and a replay needs a
// topic; both before asking Kafka anything (no admin client here).
func TestPlanReplayTopicsRefusesBadTargets(t *testing.T) {
	tests := []struct {
		name   string
		topics []string
		target ReplayTarget
		want   string
	}{
		{name: "offsets on two topics", topics: []string{"sluice.shop.orders", "sluice.shop.customers"},
			target: ReplayTarget{Offsets: map[int32]int64{0: 5}}, want: "name one table"},
		{name: "no topic", target: ReplayTarget{Earliest: true}, want: "no topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanReplayTopics(t.Context(), nil, "g", tt.topics, tt.target)
			if !errors.Is(err, ErrReplayTarget) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PlanReplayTopics: %v, want ErrReplayTarget saying %q", err, tt.want)
			}
			for _, topic := range tt.topics {
				if !strings.Contains(err.Error(), topic) {
					t.Errorf("error %q does not name topic %s", err, topic)
				}
			}
		})
	}
}
