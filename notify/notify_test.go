package notify

import "testing"

func TestDecide(t *testing.T) {
	ok := Status{Outcome: "success"}
	failed := Status{Outcome: "failure"}
	partial := Status{Outcome: "partial"}
	tests := []struct {
		name    string
		cur     Status
		prev    Status
		hadPrev bool
		summary bool
		want    string
	}{
		{name: "first run succeeds", cur: ok},
		{name: "success after success", cur: ok, prev: ok, hadPrev: true},
		{name: "success after success, with summaries", cur: ok, prev: ok, hadPrev: true, summary: true, want: Summary},
		{name: "failure", cur: failed, want: Failure},
		{name: "failure after failure", cur: failed, prev: failed, hadPrev: true, want: Failure},
		{name: "recovery", cur: ok, prev: failed, hadPrev: true, want: Recovery},
		{name: "recovery beats summary", cur: ok, prev: failed, hadPrev: true, summary: true, want: Recovery},
		{name: "success after partial", cur: ok, prev: partial, hadPrev: true, want: Recovery},
		{name: "partial", cur: partial, prev: ok, hadPrev: true, want: Partial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.cur, tt.prev, tt.hadPrev, tt.summary); got != tt.want {
				t.Errorf("Decide = %q, want %q", got, tt.want)
			}
		})
	}
}
