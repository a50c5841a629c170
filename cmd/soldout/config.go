package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"soldout/internal/httpapi"
	"soldout/internal/sanity"
	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// defaultReservationTTL is Stripe's minimum expires_at (30 minutes ahead)
// plus a minute against clock skew between soldout and Stripe.
const defaultReservationTTL = 31 * time.Minute

// The time budget's range: under a second leaves Sanity no time to answer;
// over a minute outlasts the lease (at most two) and Stripe's own patience.
const (
	minBudget = time.Second
	maxBudget = 60 * time.Second
)

func budgetInRange(d time.Duration) bool { return d >= minBudget && d <= maxBudget }

// config is every setting a command may need, read from the environment
// and overridden by flags.
type config struct {
	Addr           string
	WebhookSecrets []string
	Sanity         sanitySettings
	DatabaseURL    string
	DatabaseFrom   string // where DatabaseURL came from: -database-url or DATABASE_URL, for messages
	LogFormat      string
	LogLevel       slog.Level
	Budget         time.Duration
	SanityRate     float64
	LeaseTTL       time.Duration // SOLDOUT_LEASE_TTL, see lease.go

	// StripeMode is the mode events must be of: SOLDOUT_STRIPE_MODE, else
	// the key's; any when neither says.
	StripeMode stock.StripeMode

	// Optional features.
	StripeSecretKey string // STRIPE_SECRET_KEY: reconcile, /api/fulfil, /api/checkout
	StripeAPIBase   string // STRIPE_API_BASE: tests and stripe-mock
	MetricsAddr     string // SOLDOUT_METRICS_ADDR: Prometheus listener, off when empty
	ClientRate      int    // SOLDOUT_CLIENT_RATE: storefront requests per minute per client
	StorefrontRate  int    // SOLDOUT_STOREFRONT_RATE: storefront requests per second, all clients
	Checkout        checkoutSettings
}

// checkoutSettings configure POST /api/checkout and the availability route.
type checkoutSettings struct {
	ReservationTTL  time.Duration // SOLDOUT_RESERVATION_TTL
	SuccessURL      string        // SOLDOUT_SUCCESS_URL, with {CHECKOUT_SESSION_ID}
	CancelURL       string        // SOLDOUT_CANCEL_URL
	AllowedOrigins  []string      // SOLDOUT_ALLOWED_ORIGINS
	DefaultCurrency string        // SOLDOUT_DEFAULT_CURRENCY
	ClientHolds     int           // SOLDOUT_CLIENT_HOLDS: pieces one client may hold at once; 0: no cap
	// Artwork field names (SOLDOUT_FIELD_TITLE, _PRICE, _CURRENCY, _IMAGE).
	ArtworkType                                       string
	TitleField, PriceField, CurrencyField, ImageField string
}

type sanitySettings struct {
	ProjectID, Dataset, Token, APIVersion, Host string
}

// configFlags registers the flags shared by the commands that run soldout's
// pipeline. Secrets have no flags: they would show in `ps`.
type configFlags struct {
	addr, databaseURL, logFormat *string
	budget                       *time.Duration
	sanityRate                   *float64
}

func addConfigFlags(fs *flag.FlagSet) configFlags {
	return configFlags{
		addr:        fs.String("addr", "", "listen address, e.g. 127.0.0.1:8080 (default \":$PORT\")"),
		databaseURL: fs.String("database-url", "", "journal location (default $DATABASE_URL, else soldout.db)"),
		logFormat:   fs.String("log-format", "", "json or text (default $SOLDOUT_LOG_FORMAT, else json)"),
		budget:      fs.Duration("budget", 0, "webhook time budget (default $SOLDOUT_TIME_BUDGET, else 8s)"),
		sanityRate:  fs.Float64("sanity-rate", 0, "Sanity mutations per second (default $SOLDOUT_SANITY_RATE, else 25)"),
	}
}

// configError collects every bad setting so that one start shows them all.
type configError []string

func (e configError) Error() string {
	return "configuration:\n  - " + strings.Join(e, "\n  - ")
}

// settings is a set of groups of settings. A command reads, validates and
// lists in its -h only the groups it uses (each envHelp entry names its
// group), so that a setting it has no use for cannot stop it.
type settings uint

const (
	useJournal       settings = 1 << iota // where the journal is
	useLogFormat                          // json or text
	useLogLevel                           // the least level logged
	usePort                               // the webhook server's port
	usePipeline                           // the pipeline's time budget, Sanity rate and lease
	useStripeMode                         // the shop's key and the mode it implies
	useStripeAPI                          // where the Stripe API is (tests, stripe-mock)
	useWebhookSecret                      // what Stripe signs with
	useSanity                             // the dataset and how to reach it
	useServer                             // what only serve's listeners use: metrics, storefront, checkout

	useAll settings = 1<<iota - 1
)

func (s settings) has(group settings) bool { return s&group != 0 }

// defaultPort is PORT's default.
const defaultPort = "8080"

// loadConfig reads and validates the groups of settings in use; the others
// keep their defaults. Flags override the settings of the groups read.
func loadConfig(f configFlags, getenv func(string) string, use settings) (config, error) {
	c := config{
		Addr:        ":" + defaultPort,
		DatabaseURL: "soldout.db", DatabaseFrom: "DATABASE_URL",
		LogFormat: "json", LogLevel: slog.LevelInfo,
		Budget: httpapi.DefaultBudget, SanityRate: 25, LeaseTTL: defaultLeaseTTL(httpapi.DefaultBudget),
		Sanity:     sanitySettings{APIVersion: sanity.DefaultAPIVersion},
		ClientRate: 30, StorefrontRate: httpapi.DefaultStorefrontRate,
		Checkout: checkoutSettings{
			ReservationTTL: defaultReservationTTL, DefaultCurrency: "eur", ArtworkType: "artwork",
			TitleField: "title", PriceField: "price", CurrencyField: "currency", ImageField: "imageUrl",
		},
	}
	var bad configError
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}

	if use.has(useJournal) {
		c.DatabaseURL = first(*f.databaseURL, env("DATABASE_URL", c.DatabaseURL))
		// Messages name what the operator typed: the flag when it was given.
		if *f.databaseURL != "" {
			c.DatabaseFrom = "-database-url"
		}
	}
	if use.has(usePort) {
		if *f.addr != "" {
			c.Addr = *f.addr
		} else {
			port := env("PORT", defaultPort)
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				bad = append(bad, fmt.Sprintf("PORT=%q is not a port number (0-65535)", port))
			}
			c.Addr = ":" + port
		}
	}
	if use.has(useLogFormat) {
		c.LogFormat = first(*f.logFormat, env("SOLDOUT_LOG_FORMAT", c.LogFormat))
		if c.LogFormat != "json" && c.LogFormat != "text" {
			if *f.logFormat != "" {
				bad = append(bad, fmt.Sprintf("-log-format %q: use json or text", c.LogFormat))
			} else {
				bad = append(bad, fmt.Sprintf("SOLDOUT_LOG_FORMAT=%q: use json or text", c.LogFormat))
			}
		}
	}
	if use.has(useLogLevel) {
		if v := env("SOLDOUT_LOG_LEVEL", ""); v != "" {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				bad = append(bad, "SOLDOUT_LOG_LEVEL: use debug, info, warn or error")
			}
		}
	}
	if use.has(usePipeline) {
		switch {
		case *f.budget != 0:
			c.Budget = *f.budget
			if !budgetInRange(c.Budget) {
				bad = append(bad, fmt.Sprintf("-budget %s: a duration between %s and %s, e.g. 8s", c.Budget, minBudget, maxBudget))
			}
		default:
			if v := env("SOLDOUT_TIME_BUDGET", ""); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil || !budgetInRange(d) {
					bad = append(bad, fmt.Sprintf("SOLDOUT_TIME_BUDGET=%q: a duration between %s and %s, e.g. 8s", v, minBudget, maxBudget))
				}
				c.Budget = d
			}
		}
		var leaseErr string
		if c.LeaseTTL, leaseErr = parseLeaseTTL(env("SOLDOUT_LEASE_TTL", ""), c.Budget); leaseErr != "" {
			bad = append(bad, leaseErr)
		}
		// NaN is no rate: it would pass a plain r < min.
		validRate := func(r float64) bool { return r >= sanity.MinMutationsPerSecond && !math.IsNaN(r) }
		switch {
		case *f.sanityRate != 0:
			c.SanityRate = *f.sanityRate
			if !validRate(c.SanityRate) {
				bad = append(bad, fmt.Sprintf("-sanity-rate %g: mutation requests per second, at least %d (Sanity allows 25 per IP)", c.SanityRate, sanity.MinMutationsPerSecond))
			}
		default:
			if v := env("SOLDOUT_SANITY_RATE", ""); v != "" {
				r, err := strconv.ParseFloat(v, 64)
				if err != nil || !validRate(r) {
					bad = append(bad, fmt.Sprintf("SOLDOUT_SANITY_RATE=%q: mutation requests per second, at least %d (Sanity allows 25 per IP)", v, sanity.MinMutationsPerSecond))
				}
				c.SanityRate = r
			}
		}
	}

	if use.has(useStripeMode) {
		c.StripeSecretKey = strings.TrimSpace(getenv("STRIPE_SECRET_KEY"))
		var modeErr string
		if c.StripeMode, modeErr = stripeMode(env("SOLDOUT_STRIPE_MODE", ""), c.StripeSecretKey); modeErr != "" {
			bad = append(bad, modeErr)
		}
	}
	if use.has(useStripeAPI) {
		c.StripeAPIBase = env("STRIPE_API_BASE", "")
		if c.StripeAPIBase != "" && !isBaseURL(c.StripeAPIBase) {
			bad = append(bad, fmt.Sprintf("STRIPE_API_BASE=%q: a base URL such as http://127.0.0.1:12111, without a path", c.StripeAPIBase))
		}
	}
	if use.has(useServer) {
		bad = append(bad, c.readServer(env)...)
	}
	if use.has(useWebhookSecret) {
		secret := getenv("STRIPE_WEBHOOK_SECRET")
		if strings.TrimSpace(secret) == "" {
			bad = append(bad, "STRIPE_WEBHOOK_SECRET is not set: copy the signing secret (whsec_…) from Stripe Dashboard → Developers → Webhooks → your endpoint, or from the output of `stripe listen`")
		} else if secrets, err := stripehook.ParseSecrets(secret); err != nil {
			bad = append(bad, "STRIPE_WEBHOOK_SECRET: "+err.Error())
		} else {
			c.WebhookSecrets = secrets
		}
	}
	if use.has(useSanity) {
		bad = append(bad, c.readSanity(env)...)
	}
	if len(bad) > 0 {
		return c, bad
	}
	return c, nil
}

// readServer reads the settings of serve's listeners beyond the webhook:
// metrics, the storefront's rates and checkout. It returns what is wrong.
func (c *config) readServer(env func(name, def string) string) (bad configError) {
	c.MetricsAddr = env("SOLDOUT_METRICS_ADDR", "")
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad = append(bad, fmt.Sprintf("SOLDOUT_METRICS_ADDR=%q: host:port, e.g. 127.0.0.1:9090", c.MetricsAddr))
		}
	}
	if v := env("SOLDOUT_CLIENT_RATE", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad = append(bad, fmt.Sprintf("SOLDOUT_CLIENT_RATE=%q: requests per minute per client, a positive whole number", v))
		}
		c.ClientRate = n
	}
	if v := env("SOLDOUT_STOREFRONT_RATE", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad = append(bad, fmt.Sprintf("SOLDOUT_STOREFRONT_RATE=%q: storefront requests per second of all clients together, a positive whole number", v))
		}
		c.StorefrontRate = n
	}
	co := &c.Checkout
	if v := env("SOLDOUT_CLIENT_HOLDS", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad = append(bad, fmt.Sprintf("SOLDOUT_CLIENT_HOLDS=%q: pieces one client may hold in checkout at once, a whole number (0: no cap)", v))
		}
		co.ClientHolds = n
	}
	co.SuccessURL = env("SOLDOUT_SUCCESS_URL", "")
	co.CancelURL = env("SOLDOUT_CANCEL_URL", "")
	co.DefaultCurrency = strings.ToLower(env("SOLDOUT_DEFAULT_CURRENCY", co.DefaultCurrency))
	co.ArtworkType = env("SOLDOUT_ARTWORK_TYPE", co.ArtworkType)
	co.TitleField = env("SOLDOUT_FIELD_TITLE", co.TitleField)
	co.PriceField = env("SOLDOUT_FIELD_PRICE", co.PriceField)
	co.CurrencyField = env("SOLDOUT_FIELD_CURRENCY", co.CurrencyField)
	co.ImageField = env("SOLDOUT_FIELD_IMAGE", co.ImageField)
	for name, v := range map[string]string{"SOLDOUT_SUCCESS_URL": co.SuccessURL, "SOLDOUT_CANCEL_URL": co.CancelURL} {
		if problem := returnURLProblem(v); problem != "" {
			bad = append(bad, fmt.Sprintf("%s=%q: %s", name, v, problem))
		}
	}
	if v := env("SOLDOUT_RESERVATION_TTL", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < defaultReservationTTL || d > 24*time.Hour-time.Minute {
			bad = append(bad, fmt.Sprintf("SOLDOUT_RESERVATION_TTL=%q: between 31m (Stripe's minimum for expires_at, 30 minutes from the session's creation, and a minute for the time until Stripe creates it and for clock skew) and 23h59m", v))
		}
		co.ReservationTTL = d
	}
	for _, o := range strings.Split(env("SOLDOUT_ALLOWED_ORIGINS", ""), ",") {
		if o = strings.TrimSuffix(strings.TrimSpace(o), "/"); o == "" {
			continue
		}
		if !isBaseURL(o) {
			bad = append(bad, fmt.Sprintf("SOLDOUT_ALLOWED_ORIGINS: %q is not an origin like https://shop.example.com", o))
		}
		co.AllowedOrigins = append(co.AllowedOrigins, o)
	}
	if len(co.DefaultCurrency) != 3 {
		bad = append(bad, fmt.Sprintf("SOLDOUT_DEFAULT_CURRENCY=%q: a three-letter ISO code such as eur", co.DefaultCurrency))
	}
	return bad
}

// readSanity reads the Sanity settings, all required but the version and
// host. It returns what is wrong.
func (c *config) readSanity(env func(name, def string) string) (bad configError) {
	s := sanitySettings{
		ProjectID:  env("SANITY_PROJECT_ID", ""),
		Dataset:    env("SANITY_DATASET", ""),
		Token:      env("SANITY_API_TOKEN", ""),
		APIVersion: strings.TrimPrefix(env("SANITY_API_VERSION", c.Sanity.APIVersion), "v"),
		Host:       env("SANITY_API_HOST", ""),
	}
	switch {
	case s.ProjectID == "":
		bad = append(bad, "SANITY_PROJECT_ID is not set: it is projectId in the Studio's sanity.config.ts, or the id shown at sanity.io/manage")
	case !sanity.ValidProjectID(s.ProjectID):
		bad = append(bad, fmt.Sprintf("SANITY_PROJECT_ID=%q is not a Sanity project id (letters, digits and -, as shown at sanity.io/manage)", s.ProjectID))
	}
	switch {
	case s.Dataset == "":
		bad = append(bad, "SANITY_DATASET is not set: the dataset holding the artworks, usually production (dataset in sanity.config.ts)")
	case !sanity.ValidDataset(s.Dataset):
		bad = append(bad, fmt.Sprintf("SANITY_DATASET=%q is not a dataset name (lowercase letters, digits, _ and -, or ~ and an alias)", s.Dataset))
	}
	if s.Token == "" {
		bad = append(bad, "SANITY_API_TOKEN is not set: create a robot token with the Editor role at sanity.io/manage → your project → API → Tokens")
	}
	if problem := sanity.APIVersionProblem(s.APIVersion); problem != "" {
		bad = append(bad, fmt.Sprintf("SANITY_API_VERSION=%q: %s", s.APIVersion, problem))
	}
	if err := sanity.CheckHost(s.Host, s.Token); err != nil {
		bad = append(bad, fmt.Sprintf("SANITY_API_HOST=%q: %v", s.Host, err))
	}
	c.Sanity = s
	return bad
}

// sessionIDPlaceholder is the one placeholder Stripe fills in a return URL.
const sessionIDPlaceholder = "{CHECKOUT_SESSION_ID}"

// returnURLProblem says what is wrong with a URL Stripe sends the buyer
// back to, or "" when it is empty or usable. Stripe takes it as it is, and
// a wrong one shows only when a buyer clicks Buy (a 502) or comes back to a
// page that is not the shop's.
func returnURLProblem(v string) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "an absolute URL of the shop, like https://shop.example.com/thanks?session_id=" + sessionIDPlaceholder
	}
	if rest := strings.ReplaceAll(v, sessionIDPlaceholder, ""); strings.ContainsAny(rest, "{}") {
		return "Stripe fills in only " + sessionIDPlaceholder + ", spelt exactly so; any other {…} reaches the buyer as it is"
	}
	return ""
}

// stripeMode reads SOLDOUT_STRIPE_MODE, or else tells the mode from the
// key's prefix (sk_live_, rk_test_…). It returns a message for configError
// when the two disagree or the setting is not a mode.
func stripeMode(setting, key string) (stock.StripeMode, string) {
	var fromKey stock.StripeMode
	switch {
	case strings.HasPrefix(key, "sk_live_"), strings.HasPrefix(key, "rk_live_"):
		fromKey = stock.ModeLive
	case strings.HasPrefix(key, "sk_test_"), strings.HasPrefix(key, "rk_test_"):
		fromKey = stock.ModeTest
	}
	mode := stock.StripeMode(setting)
	switch {
	case setting == "":
		return fromKey, ""
	case mode != stock.ModeTest && mode != stock.ModeLive:
		return "", fmt.Sprintf("SOLDOUT_STRIPE_MODE=%q: test or live", setting)
	case fromKey != "" && fromKey != mode:
		return "", fmt.Sprintf("SOLDOUT_STRIPE_MODE=%s, but STRIPE_SECRET_KEY is a %s-mode key: use the key and the endpoint secret of one mode", setting, fromKey)
	}
	return mode, ""
}

// isBaseURL accepts http(s)://host[:port] with nothing after it.
func isBaseURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && (u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.User == nil
}

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func newLogger(c config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// parseFlags parses args and turns -h into a clean exit.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if help, err = parseQuietly(fs, args); help || err != nil {
		return help, err
	}
	if fs.NArg() > 0 {
		return false, flagError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	return false, nil
}

// parseQuietly is fs.Parse, which prints the error and the whole usage on a
// mistake: a screen of help that scrolls the one line that matters away.
// Here -h prints the usage, and a mistake only the error, with where the
// usage is.
func parseQuietly(fs *flag.FlagSet, args []string) (help bool, err error) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err = fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return true, nil
	}
	if err != nil {
		return false, flagError(fs, err.Error())
	}
	return false, nil
}

// flagError is a usage error that says where the command's help is.
func flagError(fs *flag.FlagSet, msg string) error {
	return usageError(fmt.Sprintf("%s (see `soldout %s -h`)", msg, fs.Name()))
}
