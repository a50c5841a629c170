package journal

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"soldout/internal/journal/pgtest"
	"soldout/internal/stock"
)

// Inspect reads a journal's state on either backend and changes nothing: an
// empty database stays empty.
func TestInspect(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.available(t)
			url := b.url(t)
			ctx := context.Background()
			for range 2 { // the first look must not have created anything
				ins, err := Inspect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				if b.name == "sqlite" {
					if !ins.Missing {
						t.Fatalf("a journal not created yet: %+v", ins)
					}
				} else if ins.Version != 0 || ins.NotWritable != nil || len(ins.Settings) != 0 {
					t.Fatalf("an empty schema: %+v", ins)
				}
			}
			d := open(t, url)
			if err := d.SetSetting(ctx, "stripe_mode", "live"); err != nil {
				t.Fatal(err)
			}
			ins, err := Inspect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if ins.Missing || ins.Kind != b.name || ins.Version != LatestSchemaVersion() || ins.NotWritable != nil || ins.Settings["stripe_mode"] != "live" {
				t.Errorf("a journal in use: %+v", ins)
			}
		})
	}
}

// A file of another application is no journal: check names its tables, and
// the operator commands refuse it rather than add a journal to it.
func TestInspectAnotherApplicationsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")
	rawExec(t, path, `CREATE TABLE customers (id INTEGER PRIMARY KEY)`)
	ins, err := Inspect(context.Background(), path)
	if err != nil || ins.Version != 0 || !slices.Equal(ins.OtherTables, []string{"customers"}) {
		t.Fatalf("Inspect: %+v, %v; want no journal and the table customers", ins, err)
	}
	if _, err := OpenExisting(context.Background(), path); stock.ErrorCode(err) != stock.NotFound {
		t.Fatalf("OpenExisting of another application's file: %v, want not_found", err)
	}
	if ins, _ := Inspect(context.Background(), path); ins.Version != 0 {
		t.Error("OpenExisting added a journal to the file")
	}
}

// On PostgreSQL the operator commands refuse a schema without a journal,
// and check names each privilege the user lacks, CREATE on the schema
// included (the migrations run at every start).
func TestInspectPostgresPrivileges(t *testing.T) {
	base := pgtest.Server(t, postgresTests)
	url := postgresURL(t)
	ctx := context.Background()
	if _, err := OpenExisting(ctx, url); stock.ErrorCode(err) != stock.NotFound {
		t.Fatalf("OpenExisting of an empty schema: %v, want not_found", err)
	}
	if ins, err := Inspect(ctx, url); err != nil || ins.Version != 0 || len(ins.OtherTables) != 0 {
		t.Fatalf("after OpenExisting: %+v, %v; want the schema still empty", ins, err)
	}
	open(t, url).Close()
	schema := schemaOf(url)
	roleURL := withRole(t, base, url, "GRANT USAGE ON SCHEMA "+schema+" TO %s", "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "+schema+" TO %s")
	ins, err := Inspect(ctx, roleURL)
	if err != nil {
		t.Fatal(err)
	}
	if ins.NotWritable == nil || !strings.Contains(ins.NotWritable.Error(), "CREATE on schema "+schema) ||
		!strings.Contains(ins.NotWritable.Error(), "UPDATE on events") || strings.Contains(ins.NotWritable.Error(), "INSERT on events") {
		t.Errorf("a user with SELECT and INSERT only: %v", ins.NotWritable)
	}
	// The operator commands only read and write rows: they open an up to
	// date journal without migrating, which would need CREATE.
	d, err := OpenExisting(ctx, roleURL)
	if err != nil {
		t.Fatalf("OpenExisting as a user without CREATE: %v", err)
	}
	if _, err := d.Sales(ctx, "a1"); err != nil {
		t.Errorf("reading sales as that user: %v", err)
	}
	d.Close()
}

// What check reports on PostgreSQL beyond the table privileges: a migration
// that alters a table its user does not own, a database that only takes
// reads, and a schema the user may not use (which PostgreSQL hides as if
// it did not exist).
func TestInspectPostgresRefusals(t *testing.T) {
	base := pgtest.Server(t, postgresTests)
	ctx := context.Background()
	t.Run("a migration altering a table the user does not own", func(t *testing.T) {
		url := postgresURL(t)
		d := open(t, url)
		// Back to schema version 2: 0003 alters sales.
		if _, err := d.db.Exec(`ALTER TABLE sales DROP COLUMN waits_for; DROP TABLE settings; DELETE FROM schema_migrations WHERE version >= 3`); err != nil {
			t.Fatal(err)
		}
		schema := schemaOf(url)
		ins, err := Inspect(ctx, withRole(t, base, url, "GRANT USAGE, CREATE ON SCHEMA "+schema+" TO %s", "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA "+schema+" TO %s"))
		if err != nil {
			t.Fatal(err)
		}
		if ins.Version != 2 || ins.NotWritable == nil || !strings.Contains(ins.NotWritable.Error(), "ownership of sales") {
			t.Errorf("version %d, NotWritable %v; want version 2 and the ownership of sales named", ins.Version, ins.NotWritable)
		}
	})
	t.Run("a database that only takes reads", func(t *testing.T) {
		url := postgresURL(t)
		open(t, url).Close()
		ins, err := Inspect(ctx, url+"&default_transaction_read_only=on")
		if err != nil {
			t.Fatal(err)
		}
		if ins.NotWritable == nil || !strings.Contains(ins.NotWritable.Error(), "only takes reads") {
			t.Errorf("NotWritable %v, want the database said read-only", ins.NotWritable)
		}
	})
	t.Run("a schema the user may not use", func(t *testing.T) {
		url := postgresURL(t)
		open(t, url).Close()
		_, err := Inspect(ctx, withRole(t, base, url))
		if err == nil || !strings.Contains(err.Error(), "USAGE on schema "+schemaOf(url)) {
			t.Errorf("Inspect: %v, want the missing USAGE named", err)
		}
	})
}

// schemaOf is the schema a pgtest URL's search_path names.
func schemaOf(url string) string {
	return url[strings.LastIndex(url, "search_path=")+len("search_path="):]
}

// withRole makes a login role for the test, runs grants (each with %s for
// the role) as the server's user, and returns url as that role.
func withRole(t *testing.T, base, url string, grants ...string) string {
	t.Helper()
	role := "soldout_test_" + strings.ToLower(rand.Text()[:8])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() }) // after the role's cleanup, registered below
	for _, stmt := range append([]string{"CREATE ROLE %s LOGIN"}, grants...) {
		if _, err := admin.Exec(fmt.Sprintf(stmt, role)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP OWNED BY " + role + "; DROP ROLE " + role); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.User(role)
	return u.String()
}

// A journal SQLite may lock but not write (a read-only file, here opened
// read-only) is not writable: the write lock alone does not tell.
func TestInspectReadOnlySQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	open(t, path).Close()
	ins, err := Inspect(context.Background(), "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	if ins.NotWritable == nil || !strings.Contains(ins.NotWritable.Error(), path) {
		t.Errorf("a read-only journal: NotWritable = %v, want an error naming the file", ins.NotWritable)
	}
}

// A journal still to be created where it cannot be is said so, and trying
// leaves nothing behind.
func TestCreatable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-made", "j.db")
	if err := Creatable(path); err == nil || !strings.Contains(err.Error(), filepath.Dir(path)) {
		t.Fatalf("Creatable in a missing directory: %v, want an error naming it", err)
	}
	ok := filepath.Join(t.TempDir(), "j.db")
	if err := Creatable(ok); err != nil {
		t.Fatalf("Creatable in a temp dir: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(ok)); len(entries) != 0 {
		t.Errorf("Creatable left %d files behind", len(entries))
	}
}
