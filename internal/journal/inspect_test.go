package journal

import (
	"context"
	"testing"
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
