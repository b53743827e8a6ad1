package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sasl/aws"
)

// awsCredentials are the AWS credentials that sign AWS_MSK_IAM logins,
// read where an ECS task or a shell has them:
//
//   - AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, if set;
//   - else the ECS task role, from the container credentials endpoint
//     (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, or _FULL_URI with
//     AWS_CONTAINER_AUTHORIZATION_TOKEN or its _FILE), cached until five
//     minutes before they expire.
//
// These two are what a task definition or a developer's shell gives; the
// AWS SDK's full chain (profiles, SSO, EKS web identity) would bring a
// dozen modules for what this does in one GET. EKS web identity is not
// supported (README, "TLS and SASL to Kafka"). ConnConfig.Opts signs
// with them for SASL aws-msk-iam.
type awsCredentials struct {
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	cached  aws.Auth
	expires time.Time
}

// ecsCredentialsHost is where ECS serves a task role's credentials for a
// relative URI.
const ecsCredentialsHost = "http://169.254.170.2"

func newAWSCredentials() *awsCredentials {
	return &awsCredentials{client: &http.Client{Timeout: 5 * time.Second}, now: time.Now}
}

// Auth returns the credentials to sign the next login with.
func (c *awsCredentials) Auth(ctx context.Context) (aws.Auth, error) {
	if key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); key != "" && secret != "" {
		return aws.Auth{AccessKey: key, SecretKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN"), UserAgent: "sluice"}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached.AccessKey != "" && c.now().Before(c.expires.Add(-5*time.Minute)) {
		return c.cached, nil
	}
	url := os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if rel := os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		url = ecsCredentialsHost + rel
	}
	if url == "" {
		return aws.Auth{}, errors.New("--kafka-sasl aws-msk-iam: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run as an ECS task with a task role")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return aws.Auth{}, fmt.Errorf("aws-msk-iam: credentials endpoint: %w", err)
	}
	token := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
	if path := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return aws.Auth{}, fmt.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
		}
		// less the trailing line break that echo and most editors leave
		if token = strings.TrimRight(string(b), "\r\n"); token == "" {
			return aws.Auth{}, fmt.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %s is empty", path)
		}
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return aws.Auth{}, fmt.Errorf("aws-msk-iam: the task role's credentials: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return aws.Auth{}, fmt.Errorf("aws-msk-iam: the task role's credentials: status %d: %s%v", resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])), errOrNil(err))
	}
	var v struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      time.Time
	}
	if err := json.Unmarshal(body, &v); err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return aws.Auth{}, fmt.Errorf("aws-msk-iam: the task role's credentials: not credentials (%v)", errOrNil(err))
	}
	c.cached = aws.Auth{AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.Token, UserAgent: "sluice"}
	c.expires = v.Expiration
	return c.cached, nil
}

func errOrNil(err error) any {
	if err == nil {
		return ""
	}
	return err
}
