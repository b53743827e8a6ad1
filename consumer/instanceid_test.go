package consumer

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestInstanceIDs(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	tests := []struct {
		name, id string
		n        int
		want     []string
		err      string
	}{
		{name: "dynamic", id: "", n: 2, want: nil},
		{name: "an id, one per member", id: "nightly", n: 3, want: []string{"run.nightly.1", "run.nightly.2", "run.nightly.3"}},
		{name: "characters Kafka refuses become dashes", id: "a b/c", n: 1, want: []string{"run.a-b-c.1"}},
		{name: "too long", id: strings.Repeat("x", 250), n: 1, err: "too long for a Kafka group.instance.id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := InstanceIDs("run", tc.id, tc.n)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("InstanceIDs = %v, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("InstanceIDs = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if got, err := InstanceIDs("consume", "host", 1); err != nil || !strings.HasPrefix(got[0], "consume.") || !strings.HasSuffix(got[0], ".1") || len(got[0]) < len("consume..1")+1 {
		t.Errorf("InstanceIDs host (%s) = %v, %v", host, got, err)
	}
}
