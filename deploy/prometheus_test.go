package deploy

import (
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// ruleFile is the part of a Prometheus rule file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert  string `json:"alert"`
			Record string `json:"record"`
			Expr   string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

// ruleExprs returns every rule expression of a rule file.
func ruleExprs(t *testing.T, b []byte) []string {
	t.Helper()
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var exprs []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("group %s: rule %s%s has no expr", g.Name, r.Alert, r.Record)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

// TestPromtool runs promtool over the rule file, the compose Prometheus
// config (whose rule_files path is relative to the config, so it resolves to
// deploy/prometheus/alerts.yml here as in the container) and the alert unit
// tests.
func TestPromtool(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", "alerts.yml"}},
		{"check config", []string{"check", "config", "prometheus.yml"}},
		{"test rules", []string{"test", "rules", "tests/alerts_test.yml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, dir, nil, nil, promtool, tc.args...)
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
		})
	}
}

// TestAlertRulesCoverTheIssue pins the alerts the deploy and tail issues ask
// for, so a rename is a deliberate change.
func TestAlertRulesCoverTheIssue(t *testing.T) {
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, filepath.Join(repoRoot(t), "deploy", "prometheus", "alerts.yml")), &rf); err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			have[r.Alert] = r.Expr
		}
	}
	for alert, mustUse := range map[string]string{
		"SluiceNightlyRunFailed":       "kube_job_status_failed",
		"SluiceNightlyRunNotSucceeded": "kube_cronjob_status_last_successful_time",
		"SluiceConsumerLagGrowing":     "sluice_consumer_lag_records",
		"SluiceConsumerDBErrors":       "sluice_consumer_db_errors_total",
		"SluiceOffsetCommitErrors":     "sluice_consumer_offset_commit_errors_total",
		"SluiceTailBehind":             "sluice_tail_seconds_behind_source) > 60",
		"SluiceTailDown":               "absent(sluice_tail_seconds_behind_source)",
		"SluiceTailReconnecting":       "increase(sluice_tail_reconnects_total[15m])",
	} {
		if expr, ok := have[alert]; !ok {
			t.Errorf("alert %s missing", alert)
		} else if !strings.Contains(expr, mustUse) {
			t.Errorf("alert %s does not use %s: %s", alert, mustUse, expr)
		}
	}
}
