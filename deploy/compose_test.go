package deploy

import (
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestDockerCompose has docker-compose (Debian's v1, no engine needed)
// parse and resolve docker-compose.yml with every profile enabled, then
// checks what the deploy issue needs of it.
func TestDockerCompose(t *testing.T) {
	dc := needTool(t, "docker-compose", "docker-compose")
	root := repoRoot(t)
	file := filepath.Join(root, "docker-compose.yml")
	if out, err := run(t, root, nil, nil, dc, "-f", file, "config", "-q"); err != nil {
		t.Fatalf("docker-compose config -q: %v\n%s", err, out)
	}
	out, err := run(t, root, nil, nil, dc, "-f", file, "--profile", "run", "--profile", "tail", "config")
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	var cfg struct {
		Services map[string]struct {
			Image         string            `json:"image"`
			Command       []string          `json:"command"`
			ContainerName string            `json:"container_name"`
			Ports         []any             `json:"ports"`
			Profiles      []string          `json:"profiles"`
			Environment   map[string]string `json:"environment"`
			Volumes       []any             `json:"volumes"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("resolved config: %v", err)
	}
	var names []string
	for n := range cfg.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"consume", "grafana", "kafka", "migrate", "mysql", "prometheus", "run", "tail"}
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	// `--scale consume=3` needs no fixed name and no host port.
	if c := cfg.Services["consume"]; c.ContainerName != "" || len(c.Ports) > 0 {
		t.Errorf("consume: container_name %q ports %v: a scaled service can have neither", c.ContainerName, c.Ports)
	}
	for _, s := range []string{"migrate", "consume", "run", "tail"} {
		svc := cfg.Services[s]
		if svc.Environment["SLUICE_METRICS_ADDR"] != "0.0.0.0:9464" {
			t.Errorf("%s: SLUICE_METRICS_ADDR %q: Prometheus scrapes :9464 inside the network", s, svc.Environment["SLUICE_METRICS_ADDR"])
		}
		if len(svc.Command) == 0 {
			t.Errorf("%s: no command", s)
		}
	}
	// Tail mode does not exist yet (issue 3): never started by a plain `up`.
	if !slices.Contains(cfg.Services["tail"].Profiles, "tail") {
		t.Errorf("tail: profiles %v, want the tail profile until tail mode lands", cfg.Services["tail"].Profiles)
	}
	// Prometheus must discover every service that runs sluice with metrics.
	var prom struct {
		ScrapeConfigs []struct {
			DNSSDConfigs []struct {
				Names []string `json:"names"`
				Port  int      `json:"port"`
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(root, "deploy", "prometheus", "prometheus.yml")), &prom); err != nil {
		t.Fatal(err)
	}
	scraped := map[string]bool{}
	for _, sc := range prom.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				scraped[n] = d.Port == 9464
			}
		}
	}
	for _, s := range []string{"consume", "run", "tail"} {
		if !scraped[s] {
			t.Errorf("deploy/prometheus/prometheus.yml does not discover the %s service on port 9464", s)
		}
	}
}
