package journal

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"soldout/internal/stock"
)

func TestOpenExisting(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	for _, u := range []string{missing, "sqlite:" + missing, "file:" + missing + "?_pragma=x"} {
		if _, err := OpenExisting(context.Background(), u); stock.ErrorCode(err) != stock.NotFound {
			t.Errorf("OpenExisting(%s) = %v, want not_found", u, err)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("OpenExisting(%s) created the file", u)
		}
	}
	path := filepath.Join(dir, "with space%.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = OpenExisting(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatalf("an existing journal: %v", err)
	}
	db.Close()
}

func TestOpenInAMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-created")
	_, err := Open(context.Background(), filepath.Join(dir, "soldout.db"))
	if stock.ErrorCode(err) != stock.Misconfigured || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open in a missing directory: %v", err)
	}
}

// The operator commands do not migrate an older journal: only serve does,
// so that a new version's commands, run before the upgrade, leave the live
// journal as the running server knows it.
func TestOpenExistingLeavesAnOlderJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	open(t, path).Close()
	rawExec(t, path, `DROP TABLE settings; DELETE FROM schema_migrations WHERE version = 4`)
	if _, err := OpenExisting(context.Background(), path); stock.ErrorCode(err) != stock.Misconfigured || !strings.Contains(err.Error(), "restart soldout serve") {
		t.Fatalf("OpenExisting of an older journal: %v, want Misconfigured saying to upgrade serve first", err)
	}
	if ins, err := Inspect(context.Background(), path); err != nil || ins.Version != LatestSchemaVersion()-1 {
		t.Errorf("after OpenExisting: version %d, %v; want it left at %d", ins.Version, err, LatestSchemaVersion()-1)
	}
}
