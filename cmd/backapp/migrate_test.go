package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/backapp/backapp/internal/testenv"
)

func TestMigrateAppliesOnceAndReportsIt(t *testing.T) {
	env := testenv.New(t, testenv.Options{Postgres: true})
	t.Setenv("BACKAPP_DATABASE_URL", env.Postgres.URL)

	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"migrate"}, &out, &errb); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Applied migration 0001") {
		t.Errorf("first run output %q", out.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"migrate"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "up to date") {
		t.Errorf("second run: exit %d output %q", code, out.String())
	}
	if strings.Contains(out.String()+errb.String(), env.Postgres.Password) {
		t.Error("the database password was printed")
	}
}

func TestMigrateWithoutADatabaseSaysSo(t *testing.T) {
	t.Setenv("BACKAPP_DATABASE_URL", "")
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"migrate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "BACKAPP_DATABASE_URL") {
		t.Errorf("exit %d stderr %q", code, errb.String())
	}
}
