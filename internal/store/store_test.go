package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestOpenKeepsThePasswordOutOfErrors(t *testing.T) {
	const password = "s3cret-Passw0rd"
	tests := []struct {
		name    string
		url     string
		wantErr error
	}{
		{"bad port", "postgres://backapp:" + password + "@127.0.0.1:notaport/backapp", ErrInvalidURL},
		{"bad escape in the password", "postgres://backapp:" + password + "%zz@127.0.0.1:5432/backapp", ErrInvalidURL},
		{"bad escape elsewhere", "postgres://backapp:" + password + "@127.0.0.1:5432/back%zzapp", ErrInvalidURL},
		{"keyword form", "host=127.0.0.1 user=backapp password=" + password + " port=notaport", ErrInvalidURL},
		{"bad pool setting", "postgres://backapp:" + password + "@127.0.0.1:5432/backapp?pool_max_conns=-1", ErrInvalidURL},
		// Port 1 on loopback refuses at once.
		{"unreachable server", "postgres://backapp:" + password + "@127.0.0.1:1/backapp?sslmode=disable&connect_timeout=5", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

func TestOpenPoolSettings(t *testing.T) {
	c := newCluster(t)
	dbURL := c.freshDB(t)
	tests := []struct {
		name         string
		query        string
		wantMaxConns int32
	}{
		{"default", "", defaultMaxConns},
		{"from the URL", "&pool_max_conns=3", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, dbURL+tt.query)
			if got := s.Pool().Config().MaxConns; got != tt.wantMaxConns {
				t.Errorf("MaxConns = %d, want %d", got, tt.wantMaxConns)
			}
			var app string
			if err := s.Pool().QueryRow(context.Background(), "SHOW application_name").Scan(&app); err != nil {
				t.Fatal(err)
			}
			if app != applicationName {
				t.Errorf("application_name = %q, want %q", app, applicationName)
			}
		})
	}
}
