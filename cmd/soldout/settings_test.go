package main

import (
	"flag"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCommandsReadOnlyWhatTheyList: a setting a command's -h does not list
// cannot stop it, however wrong; a wrong one it lists does.
func TestCommandsReadOnlyWhatTheyList(t *testing.T) {
	o := startShop(t)
	o.artwork("art-1", true)
	sold := o.sell("paid", "art-1", "cs_listed", "sold")
	base := testEnv(o.lakeURL, o.env)
	missing := filepath.Join(t.TempDir(), "missing.db")
	noJournal := []string{"DATABASE_URL", "no journal"}
	for _, tt := range []struct {
		args        []string
		name, value string   // a setting the command lists, made wrong
		want        []string // in the error the command then fails with
	}{
		{[]string{"events", "list"}, "DATABASE_URL", missing, noJournal},
		{[]string{"events", "show", sold.EventID}, "DATABASE_URL", missing, noJournal},
		{[]string{"sales", "list"}, "DATABASE_URL", missing, noJournal},
		{[]string{"replay", sold.EventID}, "SOLDOUT_TIME_BUDGET", "abc", []string{"configuration:", "SOLDOUT_TIME_BUDGET"}},
		{[]string{"reconcile"}, "STRIPE_API_BASE", "ftp://x", []string{"configuration:", "STRIPE_API_BASE"}},
		{[]string{"trigger", "-url", o.srv.url + "/api/webhook"}, "STRIPE_WEBHOOK_SECRET", "whsec_with a blank", []string{"configuration:", "STRIPE_WEBHOOK_SECRET"}},
		{[]string{"demo"}, "SOLDOUT_LOG_LEVEL", "loud", []string{"configuration:", "SOLDOUT_LOG_LEVEL"}},
	} {
		what := strings.Join(tt.args, " ")
		helpOut, helpErr, _ := runCommand(t, base, append(slices.Clone(tt.args), "-h")...)
		listed := listedEnv(helpOut + helpErr)
		if !slices.Contains(listed, tt.name) {
			t.Fatalf("%s -h does not list %s: %v", what, tt.name, listed)
		}
		wrong := map[string]string{}
		for _, name := range everySetting() {
			if !slices.Contains(listed, name) {
				wrong[name] = "\x01 not valid"
			}
		}
		env := func(k string) string {
			if v, ok := wrong[k]; ok {
				return v
			}
			return base(k)
		}
		if out, errOut, code := runCommand(t, env, tt.args...); code != 0 {
			t.Errorf("%s, every setting it does not list wrong: exit %d\n%s%s", what, code, out, errOut)
		}
		wrong[tt.name] = tt.value
		_, errOut, code := runCommand(t, env, tt.args...)
		if code != 1 {
			t.Errorf("%s with %s=%q: exit %d, want 1\n%s", what, tt.name, tt.value, code, errOut)
		}
		wantIn(t, what+" with "+tt.name+" wrong", errOut, tt.want...)
	}
}

// TestLoadConfigReadsEachGroupsSettings: loadConfig reads, for each group,
// exactly the settings envHelp tags with it, which the commands' -h list.
func TestLoadConfigReadsEachGroupsSettings(t *testing.T) {
	flags := addConfigFlags(flag.NewFlagSet("", flag.ContinueOnError))
	for group := settings(1); useAll.has(group); group <<= 1 {
		read := map[string]bool{}
		_, _ = loadConfig(flags, func(name string) string {
			// One entry documents the four artwork field names.
			if strings.HasPrefix(name, "SOLDOUT_FIELD_") {
				name = "SOLDOUT_FIELD_TITLE"
			}
			read[name] = true
			return ""
		}, group)
		var tagged []string
		for _, e := range envHelp {
			if e.use == group {
				tagged = append(tagged, e.name)
			}
		}
		got := slices.Sorted(maps.Keys(read))
		slices.Sort(tagged)
		if len(tagged) == 0 || !slices.Equal(got, tagged) {
			t.Errorf("group %#x: loadConfig reads %v, envHelp lists %v", uint(group), got, tagged)
		}
	}
}
