package deploy

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's Kustomization that deploy/k8s
// uses; decoding it strictly catches a misspelt field.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// scaledObject is KEDA's ScaledObject (keda.sh/v1alpha1), a CRD with no Go
// types worth the dependency: the fields of its schema that Sluice may use.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval  *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod   *int32 `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount *int32 `json:"idleReplicaCount,omitempty"`
		MinReplicaCount  *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount  *int32 `json:"maxReplicaCount,omitempty"`
		Advanced         *struct {
			RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
			HPAConfig                     *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

// kafkaTriggerKeys are the Kafka scaler's metadata keys (KEDA 2.x docs);
// metadata is a free map, so a typo would otherwise pass unnoticed.
var kafkaTriggerKeys = []string{"bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold",
	"offsetResetPolicy", "allowIdleConsumers", "scaleToZeroOnInvalidOffset", "excludePersistentLag", "limitToPartitionsWithLag",
	"partitionLimitation", "sasl", "tls", "version", "ensureEvenDistributionOfPartitions"}

// manifests is deploy/k8s decoded: every document of every YAML file.
type manifests struct {
	kustomization kustomization
	files         []string // relative to deploy/k8s
	cronJobs      map[string]*batchv1.CronJob
	jobs          []*batchv1.Job
	deployments   map[string]*appsv1.Deployment
	configMaps    map[string]*corev1.ConfigMap
	secrets       map[string]*corev1.Secret
	namespaces    []*corev1.Namespace
	scaledObjects map[string]*scaledObject
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// loadManifests decodes every document strictly (unknown or duplicate
// fields are errors) into the API type of its apiVersion and kind.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy", "k8s")
	m := &manifests{
		cronJobs: map[string]*batchv1.CronJob{}, deployments: map[string]*appsv1.Deployment{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		scaledObjects: map[string]*scaledObject{},
	}
	m.files = files(t, dir, ".yaml", ".yml")
	for _, f := range m.files {
		for i, doc := range docSeparator.Split(string(readFile(t, filepath.Join(dir, f))), -1) {
			if len(bytes.TrimSpace(stripComments([]byte(doc)))) == 0 {
				continue
			}
			if err := m.decode([]byte(doc)); err != nil {
				t.Errorf("%s (document %d): %v", f, i+1, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

func stripComments(b []byte) []byte {
	return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAll(b, nil)
}

func (m *manifests) decode(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(apiVersion string, into any) error {
		if tm.APIVersion != apiVersion {
			return fmt.Errorf("%s: apiVersion %q, want %q", tm.Kind, tm.APIVersion, apiVersion)
		}
		return yaml.UnmarshalStrict(doc, into)
	}
	switch tm.Kind {
	case "Kustomization":
		return strict("kustomize.config.k8s.io/v1beta1", &m.kustomization)
	case "CronJob":
		var o batchv1.CronJob
		err := strict("batch/v1", &o)
		m.cronJobs[o.Name] = &o
		return err
	case "Job":
		var o batchv1.Job
		m.jobs = append(m.jobs, &o)
		return strict("batch/v1", &o)
	case "Deployment":
		var o appsv1.Deployment
		err := strict("apps/v1", &o)
		m.deployments[o.Name] = &o
		return err
	case "ConfigMap":
		var o corev1.ConfigMap
		err := strict("v1", &o)
		m.configMaps[o.Name] = &o
		return err
	case "Secret":
		var o corev1.Secret
		err := strict("v1", &o)
		m.secrets[o.Name] = &o
		return err
	case "Namespace":
		var o corev1.Namespace
		m.namespaces = append(m.namespaces, &o)
		return strict("v1", &o)
	case "ScaledObject":
		var o scaledObject
		err := strict("keda.sh/v1alpha1", &o)
		m.scaledObjects[o.Name] = &o
		return err
	}
	return fmt.Errorf("unexpected kind %q (apiVersion %q): add it to the test's decoder", tm.Kind, tm.APIVersion)
}

// TestKubernetesManifestsDecodeStrictly decodes deploy/k8s into the
// Kubernetes API types and checks what the deploy issue asks of them.
func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)

	t.Run("kustomization lists every manifest", func(t *testing.T) {
		var want []string
		for _, f := range m.files {
			if f != "kustomization.yaml" && filepath.Dir(f) == "." {
				want = append(want, f)
			}
		}
		got := slices.Clone(m.kustomization.Resources)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("kustomization resources %v, want the top-level manifests %v (once/ is applied by hand)", got, want)
		}
		for _, r := range m.kustomization.Resources {
			if regexp.MustCompile(`(?m)^kind: Secret\s*$`).Match(readFile(t, filepath.Join(repoRoot(t), "deploy", "k8s", r))) {
				t.Errorf("kustomization resource %s holds a Secret: every `kubectl apply -k` would overwrite the real one with it", r)
			}
		}
		if len(m.kustomization.Images) != 1 || m.kustomization.Images[0].Name != "sluice" || m.kustomization.Images[0].NewTag == "" {
			t.Errorf("kustomization images %+v: want the sluice image with a tag", m.kustomization.Images)
		}
	})

	// The decoder itself must reject what kubectl would: a misspelt field,
	// a field in the wrong place, a kind it does not know, a wrong version.
	t.Run("strict decoding rejects mistakes", func(t *testing.T) {
		for name, doc := range map[string]string{
			"misspelt field": "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: x}\nspec: {schedule: '0 2 * * *', concurencyPolicy: Forbid, jobTemplate: {spec: {template: {spec: {containers: []}}}}}\n",
			"nested typo":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: s, image: i, imagePullPolicyy: Always}]}}}\n",
			"KEDA typo":      "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: d}, maxReplicas: 3, triggers: []}\n",
			"unknown kind":   "apiVersion: v1\nkind: Pod\n",
			"bad quantity":   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: s, image: i, resources: {limits: {memory: lots}}}]}}}\n",
			"wrong version":  "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: x}\n",
			"duplicate key":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: '1', A: '2'}\n",
		} {
			if err := (&manifests{cronJobs: map[string]*batchv1.CronJob{}, deployments: map[string]*appsv1.Deployment{},
				configMaps: map[string]*corev1.ConfigMap{}, scaledObjects: map[string]*scaledObject{}}).decode([]byte(doc)); err == nil {
				t.Errorf("%s: decoded without error:\n%s", name, doc)
			} else {
				t.Logf("%s: %v", name, err)
			}
		}
	})

	cfg := m.configMaps["sluice-config"]
	if cfg == nil {
		t.Fatal("no ConfigMap sluice-config")
	}
	sec := m.secrets["sluice-dsn"]
	if sec == nil {
		t.Fatal("no Secret sluice-dsn")
	}

	t.Run("nightly CronJob", func(t *testing.T) {
		cj := m.cronJobs["sluice-nightly"]
		if cj == nil {
			t.Fatal("no CronJob sluice-nightly")
		}
		s := cj.Spec
		if s.Schedule != "0 2 * * *" {
			t.Errorf("schedule %q, want 0 2 * * *", s.Schedule)
		}
		if s.TimeZone == nil || *s.TimeZone == "" {
			t.Error("timeZone must be set (02:00 in a configurable zone)")
		}
		if s.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("concurrencyPolicy %q, want Forbid", s.ConcurrencyPolicy)
		}
		if s.Suspend == nil || *s.Suspend {
			t.Error("suspend must be present (the pause switch) and false")
		}
		js := s.JobTemplate.Spec
		if js.BackoffLimit == nil || js.ActiveDeadlineSeconds == nil {
			t.Error("backoffLimit and activeDeadlineSeconds (the run's deadline) must be set")
		}
		if js.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("restartPolicy %q, want Never (podFailurePolicy needs it)", js.Template.Spec.RestartPolicy)
		}
		c := onlyContainer(t, js.Template.Spec)
		if !slices.Equal(c.Args, []string{"run"}) && !slices.Equal(c.Args, []string{"run", "--verify"}) {
			t.Errorf("args %v, want [run]", c.Args)
		}
		checkContainer(t, c, cfg, sec, true, true, false)
	})

	t.Run("consume Deployment and its KEDA ScaledObject", func(t *testing.T) {
		d := m.deployments["sluice-consume"]
		if d == nil {
			t.Fatal("no Deployment sluice-consume")
		}
		if d.Spec.Replicas != nil {
			t.Errorf("replicas %d: leave it to the autoscaler", *d.Spec.Replicas)
		}
		c := onlyContainer(t, d.Spec.Template.Spec)
		if !slices.Equal(c.Args, []string{"consume", "--consumers", "1"}) {
			t.Errorf("args %v, want [consume --consumers 1]: one member per replica, as KEDA counts them", c.Args)
		}
		checkContainer(t, c, cfg, sec, false, true, true)
		checkSelector(t, d)

		so := m.scaledObjects["sluice-consume"]
		if so == nil {
			t.Fatal("no ScaledObject sluice-consume")
		}
		if so.Spec.ScaleTargetRef.Name != d.Name {
			t.Errorf("scaleTargetRef %q, want %q", so.Spec.ScaleTargetRef.Name, d.Name)
		}
		if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount > 12 || *so.Spec.MinReplicaCount > *so.Spec.MaxReplicaCount {
			t.Errorf("replica bounds %v..%v: want min <= max <= 12 partitions", so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
		}
		if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "kafka" {
			t.Fatalf("triggers %+v: want one kafka trigger", so.Spec.Triggers)
		}
		md := so.Spec.Triggers[0].Metadata
		for k := range md {
			if !slices.Contains(kafkaTriggerKeys, k) {
				t.Errorf("kafka trigger: unknown metadata key %q", k)
			}
		}
		for key, env := range map[string]string{"bootstrapServers": "SLUICE_BROKERS", "consumerGroup": "SLUICE_GROUP", "topic": "SLUICE_TOPIC"} {
			if md[key] == "" || md[key] != cfg.Data[env] {
				t.Errorf("kafka trigger %s %q differs from %s %q in the ConfigMap", key, md[key], env, cfg.Data[env])
			}
		}
		if _, err := resource.ParseQuantity(md["lagThreshold"]); err != nil {
			t.Errorf("lagThreshold %q: %v", md["lagThreshold"], err)
		}
		if md["offsetResetPolicy"] != "earliest" {
			t.Errorf("offsetResetPolicy %q: Sluice starts a new group at the earliest offset", md["offsetResetPolicy"])
		}
	})

	t.Run("tail Deployment", func(t *testing.T) {
		d := m.deployments["sluice-tail"]
		if d == nil {
			t.Fatal("no Deployment sluice-tail")
		}
		// Exactly one: a second tail of the same name fences the first
		// (same Kafka transactional id), so they would only take turns.
		if d.Spec.Replicas == nil {
			t.Error("replicas unset: want 1, explicitly")
		} else if *d.Spec.Replicas != 1 {
			t.Errorf("replicas %d: want exactly 1 (a tail runs alone)", *d.Spec.Replicas)
		}
		// Recreate stops the old pod before the new one starts.
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil {
			t.Errorf("strategy %+v, want Recreate", d.Spec.Strategy)
		}
		c := onlyContainer(t, d.Spec.Template.Spec)
		if !slices.Equal(c.Args, []string{"tail"}) {
			t.Errorf("args %v, want [tail]", c.Args)
		}
		checkContainer(t, c, cfg, sec, true, false, true)
		checkSelector(t, d)
	})

	t.Run("migrate Job", func(t *testing.T) {
		if len(m.jobs) != 1 {
			t.Fatalf("%d Jobs, want once/migrate-job.yaml", len(m.jobs))
		}
		c := onlyContainer(t, m.jobs[0].Spec.Template.Spec)
		if !slices.Equal(c.Args, []string{"migrate"}) {
			t.Errorf("args %v, want [migrate]", c.Args)
		}
		for _, e := range c.Env {
			if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
				if _, ok := sec.StringData[ref.SecretKeyRef.Key]; !ok {
					t.Errorf("%s: Secret %s has no key %s", e.Name, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key)
				}
			}
		}
	})
}

func onlyContainer(t *testing.T, ps corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(ps.Containers))
	}
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
		t.Error("pod must run as non-root (the image's nonroot user)")
	}
	return ps.Containers[0]
}

// checkContainer checks a sluice container: the DSNs from the Secret, the
// metrics address the probes use, the resources from the sizing, and the
// probes on /healthz and /readyz.
func checkContainer(t *testing.T, c corev1.Container, cfg *corev1.ConfigMap, sec *corev1.Secret, source, target, readiness bool) {
	t.Helper()
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for name, want := range map[string]bool{"SLUICE_SOURCE_DSN": source, "SLUICE_TARGET_DSN": target} {
		e, ok := env[name]
		switch {
		case !want && ok:
			t.Errorf("%s set but the command does not use it", name)
		case want && (!ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil):
			t.Errorf("%s must come from a secretKeyRef", name)
		case want:
			ref := e.ValueFrom.SecretKeyRef
			if _, has := sec.StringData[ref.Key]; ref.Name != sec.Name || !has {
				t.Errorf("%s: Secret %s has no key %s", name, ref.Name, ref.Key)
			}
		}
	}
	if got := env["SLUICE_METRICS_ADDR"].Value; got != "0.0.0.0:9464" {
		t.Errorf("SLUICE_METRICS_ADDR %q, want 0.0.0.0:9464 (the probes' port)", got)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != cfg.Name {
		t.Errorf("envFrom %+v: want the ConfigMap %s", c.EnvFrom, cfg.Name)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9464 || c.Ports[0].Name != "metrics" {
		t.Errorf("ports %+v: want metrics 9464", c.Ports)
	}
	for what, q := range map[string]struct {
		got  resource.Quantity
		want string
	}{
		"requests.cpu":    {c.Resources.Requests[corev1.ResourceCPU], "500m"},
		"requests.memory": {c.Resources.Requests[corev1.ResourceMemory], "256Mi"},
		"limits.cpu":      {c.Resources.Limits[corev1.ResourceCPU], "2"},
		"limits.memory":   {c.Resources.Limits[corev1.ResourceMemory], "384Mi"},
	} {
		if q.got.Cmp(resource.MustParse(q.want)) != 0 {
			t.Errorf("%s %s, want %s (a 1M-row run peaks at ~200 MB with GOMEMLIMIT 160MiB)", what, q.got.String(), q.want)
		}
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s: want httpGet %s on port metrics, got %+v", name, path, p)
		}
	}
	probe("livenessProbe", c.LivenessProbe, "/healthz")
	if readiness {
		probe("readinessProbe", c.ReadinessProbe, "/readyz")
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container: want readOnlyRootFilesystem and no privilege escalation")
	}
}

func checkSelector(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatalf("%s selector: %v", d.Name, err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("%s: selector %s does not match the pod labels %v", d.Name, sel, d.Spec.Template.Labels)
	}
}
