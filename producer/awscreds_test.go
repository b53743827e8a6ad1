package producer

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAWSCredentials(t *testing.T) {
	clear := func(t *testing.T) {
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
			"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"} {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	// A stand-in for the ECS endpoint, on loopback: it checks the token and
	// hands out credentials that expire in an hour.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"AccessKeyId":"AKIA%d","SecretAccessKey":"s","Token":"sess","Expiration":%q}`, calls.Load(), now.Add(time.Hour).Format(time.RFC3339))
	}))
	defer srv.Close()

	t.Run("environment", func(t *testing.T) {
		clear(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
		a, err := newAWSCredentials().Auth(t.Context())
		if err != nil || a.AccessKey != "AKIAENV" || a.SecretKey != "secret" {
			t.Fatalf("Auth = %+v, %v", a, err)
		}
	})
	t.Run("task role, cached until near expiry", func(t *testing.T) {
		clear(t)
		t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/creds")
		t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok")
		c := newAWSCredentials()
		c.now = func() time.Time { return now }
		calls.Store(0)
		for range 3 {
			a, err := c.Auth(t.Context())
			if err != nil || a.AccessKey != "AKIA1" || a.SessionToken != "sess" {
				t.Fatalf("Auth = %+v, %v", a, err)
			}
		}
		if calls.Load() != 1 {
			t.Errorf("%d calls to the endpoint for three logins, want 1", calls.Load())
		}
		c.now = func() time.Time { return now.Add(56 * time.Minute) } // within five minutes of expiry
		if a, err := c.Auth(t.Context()); err != nil || a.AccessKey != "AKIA2" {
			t.Errorf("near expiry: Auth = %+v, %v; want fresh credentials", a, err)
		}
	})
	t.Run("endpoint refuses", func(t *testing.T) {
		clear(t)
		t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/creds")
		_, err := newAWSCredentials().Auth(t.Context())
		if err == nil || !strings.Contains(err.Error(), "status 401") {
			t.Errorf("Auth without the token = %v, want the endpoint's refusal", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		clear(t)
		_, err := newAWSCredentials().Auth(t.Context())
		if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || !strings.Contains(err.Error(), "task role") {
			t.Errorf("Auth with nothing = %v, want the ways to give credentials named", err)
		}
	})
}
