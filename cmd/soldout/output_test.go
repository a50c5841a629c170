package main

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// What buyers and metadata put in the journal reaches the operator's
// terminal as text, never as a control sequence.
func TestTerminalSafe(t *testing.T) {
	for _, tt := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain text, tabs and newlines", []string{"art-1\tsold\n"}, "art-1\tsold\n"},
		{"an escape sequence that clears the screen", []string{"art-\x1b[2J1\n"}, `art-\u001b[2J1` + "\n"},
		{"a bell and a carriage return", []string{"a\x07b\rc"}, `a\u0007b\u000dc`},
		{"DEL and a C1 control", []string{"x\x7fy\u009bz"}, `x\u007fy\u009bz`},
		{"an invalid byte", []string{"x\x9by"}, `x\x9by`},
		{"non-ASCII text", []string{"Sommerwiese – 1 200,00 €"}, "Sommerwiese – 1 200,00 €"},
		{"a rune cut between writes", []string{"caf\xc3", "\xa9!"}, "café!"},
		{"a rune cut at the end", []string{"caf\xc3"}, `caf\xc3`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			run := operatorOutput(func(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
				for _, w := range tt.writes {
					if n, err := io.WriteString(stdout, w); err != nil || n != len(w) {
						t.Fatalf("Write: %d, %v", n, err)
					}
				}
				return nil
			})
			if err := run(context.Background(), nil, nil, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}
