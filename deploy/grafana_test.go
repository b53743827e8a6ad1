package deploy

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// dashboardExprs returns the expr of every query in a Grafana dashboard,
// wherever it sits (panels, rows' nested panels, template variables).
func dashboardExprs(t *testing.T, b []byte) []string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return exprs
}

// TestDashboard checks the dashboard's shape: unique panel ids, every query
// on the $datasource variable (so it imports into any Grafana), and a panel
// for each thing the deploy issue asks to see that Sluice exports today.
func TestDashboard(t *testing.T) {
	b := readFile(t, filepath.Join(repoRoot(t), "deploy", "grafana", "sluice.json"))
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource *struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID != "sluice" || d.Title == "" {
		t.Errorf("uid %q title %q: want uid sluice and a title", d.UID, d.Title)
	}
	ids := map[int]string{}
	var all strings.Builder
	for _, p := range d.Panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		for _, tg := range p.Targets {
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" || tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: queries must use the ${datasource} variable", p.Title)
			}
			all.WriteString(tg.Expr + "\n")
		}
	}
	for what, expr := range map[string]string{
		"backfill throughput":    "rate(sluice_backfill_rows_read_total",
		"producer throughput":    "rate(sluice_producer_records_total",
		"consumer throughput":    "rate(sluice_consumer_rows_upserted_total",
		"consumer lag":           "sluice_consumer_lag_records",
		"DB commit latency":      "histogram_quantile(0.99, sum by (le) (rate(sluice_consumer_db_commit_seconds_bucket",
		"producer errors":        "sluice_producer_errors_total",
		"DB errors":              "sluice_consumer_db_errors_total",
		"DB retries":             "sluice_consumer_db_retries_total",
		"offset commit errors":   "sluice_consumer_offset_commit_errors_total",
		"backfill progress":      "sluice_backfill_progress_ratio",
		"backfill chunks (done)": "sluice_backfill_chunks_done_total",
		"tail seconds behind":    "sluice_tail_seconds_behind_source",
		"tail events by op":      "sum by (op) (rate(sluice_tail_events_total",
		"tail commit time p99":   "histogram_quantile(0.99, sum by (le) (rate(sluice_tail_commit_seconds_bucket",
		"tail stream restarts":   "sluice_tail_reconnects_total",
	} {
		if !strings.Contains(all.String(), expr) {
			t.Errorf("no panel shows %s (%s)", what, expr)
		}
	}
}

// TestGrafanaProvisioning decodes the provisioning files strictly: a typo in
// a key is an error here rather than a setting Grafana silently ignores.
func TestGrafanaProvisioning(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "grafana", "provisioning")
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Type      string `json:"type"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
			Editable  bool   `json:"editable"`
		} `json:"datasources"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "datasources", "prometheus.yml")), &ds); err != nil {
		t.Fatalf("datasources/prometheus.yml: %v", err)
	}
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasources/prometheus.yml: want one prometheus data source at http://prometheus:9090, got %+v", ds)
	}
	var prov struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name                  string `json:"name"`
			Folder                string `json:"folder"`
			Type                  string `json:"type"`
			DisableDeletion       bool   `json:"disableDeletion"`
			AllowUIUpdates        bool   `json:"allowUiUpdates"`
			UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
			Options               struct {
				Path                      string `json:"path"`
				FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "dashboards", "sluice.yml")), &prov); err != nil {
		t.Fatalf("dashboards/sluice.yml: %v", err)
	}
	// docker-compose.yml mounts deploy/grafana at /etc/sluice/grafana.
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path != "/etc/sluice/grafana" {
		t.Errorf("dashboards/sluice.yml: want one file provider on /etc/sluice/grafana, got %+v", prov)
	}
}
