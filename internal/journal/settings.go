package journal

import (
	"context"
	"database/sql"
	"errors"
)

// Setting returns the value stored under name, "" when there is none.
func (d *DB) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := d.read.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fail(err, "read setting %s", name)
	}
	return v, nil
}

// SetSetting stores value under name.
func (d *DB) SetSetting(ctx context.Context, name, value string) error {
	err := d.write(ctx, func(ctx context.Context) error {
		_, err := d.writer().ExecContext(ctx,
			`INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
		return err
	})
	if err != nil {
		return fail(err, "store setting %s", name)
	}
	return nil
}
