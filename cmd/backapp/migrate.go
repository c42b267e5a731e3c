package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/backapp/backapp/internal/store"
)

// databaseURL reads the PostgreSQL URL from a file or the environment,
// never from a flag: it holds a password.
func databaseURL(file string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("cannot read the database URL file: %w", err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	if u := os.Getenv("BACKAPP_DATABASE_URL"); u != "" {
		return u, nil
	}
	return "", errors.New("no database: set BACKAPP_DATABASE_URL or --database-url-file")
}

// runMigrate applies the embedded schema migrations and reports which ran.
// Safe to run from several replicas at once.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backapp migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urlFile := fs.String("database-url-file", "", "file holding the PostgreSQL URL (or env BACKAPP_DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "backapp migrate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	url, err := databaseURL(*urlFile)
	if err != nil {
		fmt.Fprintf(stderr, "backapp migrate: %v\n", err)
		return 2
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		fmt.Fprintf(stderr, "backapp migrate: %v\n", err)
		return 1
	}
	defer st.Close()
	applied, err := store.Migrate(ctx, st.Pool())
	if err != nil {
		fmt.Fprintf(stderr, "backapp migrate: %v\n", err)
		return 1
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "The database schema is up to date.")
		return 0
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "Applied migration %s\n", m)
	}
	return 0
}
