// Package deploy holds no code: it is the home of the offline checks of the
// deployment files beside it (the container image, docker-compose.yml,
// deploy/k8s, deploy/ecs, deploy/prometheus and deploy/grafana), run by
// `go test ./...` and so by `make test`.
//
// The checks need no cloud, no cluster and no Docker engine:
//
//   - docker-compose.yml parses (`docker-compose config`);
//   - the Prometheus rules and config pass promtool, and the alert unit tests
//     in prometheus/tests pass `promtool test rules`;
//   - the metrics exposition of the real stage registries passes
//     `promtool check metrics`;
//   - every Kubernetes manifest decodes strictly into its API type;
//   - every Terraform file parses and is canonically formatted;
//   - the Grafana dashboard and the alert rules name only metrics that Sluice
//     exports.
//
// A missing tool (docker-compose, promtool) skips its check, unless CI=true
// or SLUICE_REQUIRE_INTEGRATION=1 (as `make test` sets), where it fails:
// `make test-deps` installs them.
package deploy
