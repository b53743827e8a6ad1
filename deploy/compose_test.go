package deploy

import (
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
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
	// The tail runs on request (`--profile tail up -d tail`), never with a
	// plain `up`, and as one container: scaling it would only fence.
	tail := cfg.Services["tail"]
	if !slices.Equal(tail.Profiles, []string{"tail"}) {
		t.Errorf("tail: profiles %v, want [tail]: a plain `up` must not start it", tail.Profiles)
	}
	if !slices.Equal(tail.Command, []string{"tail"}) {
		t.Errorf("tail: command %v, want [tail]", tail.Command)
	}
	if tail.ContainerName != "" || len(tail.Ports) > 0 {
		t.Errorf("tail: container_name %q ports %v: Prometheus reaches it as tail:9464 inside the network", tail.ContainerName, tail.Ports)
	}
	for env, want := range map[string]string{"SLUICE_SOURCE_DSN": "@tcp(mysql:3306)/source_db", "SLUICE_BROKERS": "kafka:19092"} {
		if got := tail.Environment[env]; !strings.HasSuffix(got, want) {
			t.Errorf("tail: %s %q, want it to end in %s", env, got, want)
		}
	}
	// What the tail needs of its source (the check it runs at start): the
	// binlog in ROW format with full images, GTIDs on (MySQL 8), a server id.
	mysqlArgs := cfg.Services["mysql"].Command
	for _, want := range []string{"--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-image=FULL",
		"--gtid-mode=ON", "--enforce-gtid-consistency=ON", "--server-id=1"} {
		if !slices.Contains(mysqlArgs, want) {
			t.Errorf("mysql: command %v lacks %s", mysqlArgs, want)
		}
	}
	// And the replication grants of the DSN's user, named in the init script.
	grants := regexp.MustCompile(`(?im)^GRANT\s+REPLICATION SLAVE,\s*REPLICATION CLIENT\s+ON\s+\*\.\*\s+TO\s+'sluice'@'%';`)
	if !grants.Match(readFile(t, filepath.Join(root, "deploy", "mysql-init", "10-sluice-grants.sql"))) {
		t.Errorf("deploy/mysql-init/10-sluice-grants.sql does not grant sluice REPLICATION SLAVE, REPLICATION CLIENT")
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
